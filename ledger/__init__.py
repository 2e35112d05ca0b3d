"""tally's ledger: append-only snapshots, double-entry journal, hash chain, pure rules, exports.

Nothing here imports ``worker``, dramatiq, httpx or redis: the ledger is a pure core plus a store.
"""
