"""Helpers shared by the sync tests and benchmarks: ledger views, sandbox settings, processes."""
