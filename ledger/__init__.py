"""tally's ledger: append-only snapshots, a double-entry journal, a hash chain, pure rules and exports.

Nothing here imports ``worker``, dramatiq, httpx or redis: the ledger is a pure core plus a store.
"""
