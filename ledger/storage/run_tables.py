"""Mutable bookkeeping of sync runs: one row per run, per feed plan, and per page or object done.

Apart from the ledger (nothing here is hashed or immutable): it drives progress display, the
end-of-run summary and the "all pages of a full scan are done" check.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from ledger.storage.types import UTCDateTime


class SyncRun(SQLModel, table=True):
    """One sync run (full or incremental) of one source."""

    __tablename__ = "sync_run"

    run_id: str = Field(sa_type=String(64), primary_key=True)
    source: str = Field(sa_type=String(32))
    mode: str = Field(sa_type=String(16))
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)


class SyncRunFeed(SQLModel, table=True):
    """The pages a run expects from one feed; grows if the feed grows during the scan."""

    __tablename__ = "sync_run_feed"

    run_id: str = Field(sa_type=String(64), primary_key=True)
    feed: str = Field(sa_type=String(64), primary_key=True)
    pages_expected: int = 0
    newest_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SyncRunItem(SQLModel, table=True):
    """One page ("orders#3") or object ("refund:<id>") done by a run, with what it appended."""

    __tablename__ = "sync_run_item"

    run_id: str = Field(sa_type=String(64), primary_key=True)
    item: str = Field(sa_type=String(200), primary_key=True)
    pages: int = 0
    new_snapshots: int = 0
    journal_entries: int = 0
    rejected: int = 0
    done_at: datetime = Field(sa_type=UTCDateTime)


RUN_TABLES = ("sync_run", "sync_run_feed", "sync_run_item")
