"""Periodic work: the scheduler's ticks and the leases that let one process act at a time."""
