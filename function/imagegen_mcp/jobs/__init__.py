"""Durable jobs: a generation outlives the call that started it and the instance that took it."""
