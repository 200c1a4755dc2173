"""Upstream image model adapters behind the `ImageProvider` protocol."""
