"""Recovery's notes per source (table ``sync_recovery``): since when the scheduler process runs,
when recovery last checked, and how many follow-ups it found pending. ``tally status`` reads them:
a check older than the process's start means the backlog is not known yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ledger.storage.engine import read_only
from ledger.storage.sync_tables import SYNC_RECOVERY

NOTE = SYNC_RECOVERY.c


@dataclass(frozen=True)
class RecoveryNote:
    source: str
    started_at: datetime  # the scheduler process started
    checked_at: datetime | None  # recovery's latest pass
    pending_follow_ups: int  # what that pass found (and sent)

    @property
    def checked_since_start(self) -> bool:
        return self.checked_at is not None and self.checked_at >= self.started_at


class RecoveryNotes:
    """Reads and writes ``sync_recovery``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def started(self, sources: Iterable[str], now: datetime) -> None:
        """A scheduler process starts: until its first pass, the backlog is unknown."""
        with self._engine.begin() as conn:
            for source in sources:
                _ensure(conn, source, now)
                conn.execute(_note(source).values(started_at=now))

    def checked(self, source: str, now: datetime, pending_follow_ups: int) -> None:
        values = {"checked_at": now, "pending_follow_ups": pending_follow_ups}
        with self._engine.begin() as conn:
            _ensure(conn, source, now)
            conn.execute(_note(source).values(**values))

    def notes(self) -> dict[str, RecoveryNote]:
        stmt = select(NOTE.source, NOTE.started_at, NOTE.checked_at, NOTE.pending_follow_ups)
        with read_only(self._engine).connect() as conn:
            return {row.source: RecoveryNote(*row) for row in conn.execute(stmt)}


def _note(source: str) -> Any:
    return update(SYNC_RECOVERY).where(NOTE.source == source)


def _ensure(conn: Connection, source: str, now: datetime) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {"source": source, "started_at": now, "pending_follow_ups": 0}
    conn.execute(dialect.insert(SYNC_RECOVERY).values(**row).on_conflict_do_nothing())
