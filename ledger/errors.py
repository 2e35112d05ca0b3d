"""The ledger's exceptions, grouped by what the caller should do about them.

    LedgerError
    ├── SchemaNotReady        the database schema is missing or behind: run `tally db upgrade`
    ├── DatabaseUnavailable   the database could not be reached (retry later)
    ├── InvalidEntry          an append was refused before touching the database (float in a
    │   │                     payload, unbalanced or foreign journal entry): nothing written
    │   └── InexactAmount     an amount NUMERIC(66,36) cannot hold exactly (more than 36 places)
    └── ChainBroken           stored rows do not match the hash chain (``seq`` names the row)

Retrying on SQLite "database is locked" or PostgreSQL serialization errors is the caller's job;
the store guarantees a failed append leaves nothing behind.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""


class SchemaNotReady(LedgerError):
    """The database has no tally schema, or an older one."""


class DatabaseUnavailable(LedgerError):
    """The database could not be reached."""


class InvalidEntry(LedgerError, ValueError):
    """An append was refused: nothing was written."""


class InexactAmount(InvalidEntry):
    """An amount the ledger cannot store exactly; in a journal entry it quarantines the snapshot."""


class ChainBroken(LedgerError):
    """A stored row does not match the hash chain."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(f"chain broken at seq {seq}: {problem}")
        self.seq = seq
        self.problem = problem
