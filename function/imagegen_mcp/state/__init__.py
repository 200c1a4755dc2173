"""State that outlives a request and is seen by every instance (job records, usage counters): the StateStore seam."""
