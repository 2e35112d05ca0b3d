"""The database tables: the immutable ledger (``ledger_*``) and mutable sync state (``sync_*``).

Ledger tables are append-only (triggers refuse UPDATE/DELETE/TRUNCATE, see
``ledger.storage.triggers``);
``ledger_head`` is the one mutable ledger row, the chain head. ``sync_*`` tables are ordinary
bookkeeping for the sync loop and hold nothing finance relies on. Migrations own the schema;
these classes describe it for queries and for the migration parity test.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from ledger.storage.types import Money, UTCDateTime

# INTEGER on SQLite so the key is the rowid; BIGINT on PostgreSQL.
SEQ = BigInteger().with_variant(Integer(), "sqlite")
HASH = String(64)


class LedgerSnapshot(SQLModel, table=True):
    """One version of a provider object, payload stored exactly as received."""

    __tablename__ = "ledger_snapshot"
    __table_args__ = (
        UniqueConstraint("external_id", "source", "kind", "version", name="uq_snapshot_version"),
    )

    seq: int = Field(sa_type=SEQ, primary_key=True, sa_column_kwargs={"autoincrement": False})
    source: str = Field(sa_type=String(32))
    kind: str = Field(sa_type=String(32))
    external_id: str = Field(sa_type=String(128))
    version: int
    observed_at: datetime = Field(sa_type=UTCDateTime)
    payload: str = Field(sa_type=Text)  # ledger.jsonx.dumps of the raw object
    content_hash: str = Field(sa_type=HASH)
    prev_hash: str = Field(sa_type=HASH)
    entry_hash: str = Field(sa_type=HASH)


class LedgerJournal(SQLModel, table=True):
    """One balanced journal transaction derived from a snapshot."""

    __tablename__ = "ledger_journal"
    __table_args__ = (
        UniqueConstraint("key", name="uq_journal_key"),
        ForeignKeyConstraint(["snapshot_seq"], ["ledger_snapshot.seq"], name="fk_journal_snapshot"),
        ForeignKeyConstraint(["reverses_key"], ["ledger_journal.key"], name="fk_journal_reverses"),
        Index("ix_journal_object", "external_id", "source", "object_kind", "seq"),
    )

    seq: int = Field(sa_type=SEQ, primary_key=True, sa_column_kwargs={"autoincrement": False})
    key: str = Field(sa_type=String(255))
    date: datetime = Field(sa_type=UTCDateTime)
    description: str = Field(sa_type=Text)
    source: str = Field(sa_type=String(32))
    object_kind: str = Field(sa_type=String(32))
    external_id: str = Field(sa_type=String(128))
    snapshot_seq: int = Field(sa_type=SEQ)
    reverses_key: str | None = Field(default=None, sa_type=String(255))
    prev_hash: str = Field(sa_type=HASH)
    entry_hash: str = Field(sa_type=HASH)


class LedgerPosting(SQLModel, table=True):
    """One leg of a journal entry; positive = debit, negative = credit."""

    __tablename__ = "ledger_posting"
    __table_args__ = (
        ForeignKeyConstraint(["journal_seq"], ["ledger_journal.seq"], name="fk_posting_journal"),
    )

    journal_seq: int = Field(sa_type=SEQ, primary_key=True)
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    account: str = Field(sa_type=String(255))
    currency: str = Field(sa_type=String(32))
    amount: Decimal = Field(sa_type=Money)


class LedgerHead(SQLModel, table=True):
    """The chain head: the last seq and its entry hash (one row, id = 1)."""

    __tablename__ = "ledger_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_head_single_row"),)

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(sa_type=SEQ)
    hash: str = Field(sa_type=HASH)


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


class SyncQuarantine(SQLModel, table=True):
    """A record that failed validation, kept with its reason and raw JSON."""

    __tablename__ = "sync_quarantine"
    __table_args__ = (UniqueConstraint("fingerprint", name="uq_quarantine_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of [source, kind, external_id, reason, raw]: the same bad record seen by every
    # re-sync is quarantined once (see ledger.storage.store.quarantine_fingerprint)
    fingerprint: str = Field(sa_type=HASH)
    source: str = Field(sa_type=String(32))
    kind: str = Field(sa_type=String(32))
    external_id: str | None = Field(default=None, sa_type=String(128))
    reason: str = Field(sa_type=Text)
    raw: str = Field(sa_type=Text)
    run_id: str | None = Field(default=None, sa_type=String(64))
    created_at: datetime = Field(sa_type=UTCDateTime)


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
    # floor(epoch seconds / interval): the slot number of the job's schedule
    tick: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    status: str = Field(sa_type=String(32))
    created_at: datetime = Field(sa_type=UTCDateTime)


LEDGER_TABLES = ("ledger_snapshot", "ledger_journal", "ledger_posting")
SYNC_TABLES = ("sync_cursor", "sync_quarantine", "sync_lease", "sync_tick")
ALL_TABLES = (*LEDGER_TABLES, "ledger_head", *SYNC_TABLES)
