"""Usage and cost: one record per metered generation, estimated prices, and quotas enforced across instances."""
