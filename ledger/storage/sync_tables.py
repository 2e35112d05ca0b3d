"""The worker's bookkeeping tables: sync runs and cursors, the scheduler's lease and ticks.

Mutable and apart from the ledger (nothing here is hashed or immutable). They are declared in
``ledger.storage`` only because one migration history (``ledger/migrations``) creates the whole
database and the parity test compares it with these classes; each table is read and written by
one module of the worker, and by no other (an import-linter contract in pyproject.toml):

- ``sync_run``, ``sync_run_feed``, ``sync_run_item``, ``sync_cursor``: ``worker.sync.state``
- ``sync_lease``: ``worker.schedule.lease``
- ``sync_tick``: ``worker.schedule.scheduler``
- ``sync_recovery``: ``worker.sync.recovery_notes``
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlmodel import Field, SQLModel

from ledger.storage.tables import table_of
from ledger.storage.types import UTCDateTime


class SyncRun(SQLModel, table=True):
    """One sync run (full or incremental) of one source."""

    __tablename__ = "sync_run"
    # a source's latest runs (status) and recent unfinished ones (recovery)
    __table_args__ = (Index("ix_sync_run_source_started", "source", "started_at"),)

    run_id: str = Field(sa_type=String(64), primary_key=True)
    source: str = Field(sa_type=String(32))
    mode: str = Field(sa_type=String(16))
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)
    # set by recovery when nothing works on the run any more and it is not resumed
    interrupted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


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


class SyncCursor(SQLModel, table=True):
    """Where each feed of each source stands."""

    __tablename__ = "sync_cursor"

    source: str = Field(sa_type=String(32), primary_key=True)
    feed: str = Field(sa_type=String(64), primary_key=True)
    high_water: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_full_scan_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SyncLease(SQLModel, table=True):
    """A named lease (e.g. the scheduler's leadership) held until ``expires_at``."""

    __tablename__ = "sync_lease"

    name: str = Field(sa_type=String(64), primary_key=True)
    holder: str = Field(sa_type=String(200))
    expires_at: datetime = Field(sa_type=UTCDateTime)


class SyncTick(SQLModel, table=True):
    """One scheduled run of a job; the primary key makes each tick fire once."""

    __tablename__ = "sync_tick"

    job: str = Field(sa_type=String(64), primary_key=True)
    # the tick's start in epoch seconds, whatever the job's interval was then
    tick: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    status: str = Field(sa_type=String(32))
    created_at: datetime = Field(sa_type=UTCDateTime)


class SyncRecovery(SQLModel, table=True):
    """What recovery last found for one source, and since when the acting scheduler runs."""

    __tablename__ = "sync_recovery"

    source: str = Field(sa_type=String(32), primary_key=True)
    started_at: datetime = Field(sa_type=UTCDateTime)  # the scheduler process started
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # latest pass
    pending_follow_ups: int = 0  # found by that pass (and sent)


SYNC_RUN = table_of(SyncRun)
SYNC_RUN_FEED = table_of(SyncRunFeed)
SYNC_RUN_ITEM = table_of(SyncRunItem)
SYNC_CURSOR = table_of(SyncCursor)
SYNC_LEASE = table_of(SyncLease)
SYNC_TICK = table_of(SyncTick)
SYNC_RECOVERY = table_of(SyncRecovery)

SYNC_TABLES = (
    "sync_run",
    "sync_run_feed",
    "sync_run_item",
    "sync_cursor",
    "sync_lease",
    "sync_tick",
    "sync_recovery",
)
