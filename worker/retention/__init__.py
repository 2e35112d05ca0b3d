"""Retention of bookkeeping rows and in-memory entries; the ledger itself is never pruned."""
