"""The ledger's own tables: the immutable ledger (``ledger_*``), its head, and the quarantine.

Ledger tables are append-only (triggers refuse UPDATE/DELETE/TRUNCATE, see
``ledger.storage.triggers``); ``ledger_head`` is the one mutable ledger row, the chain head;
``sync_quarantine`` keeps the records an append refused. Only ``ledger.storage`` reads and
writes them. Migrations own the schema; these classes describe it for queries and for the
migration parity test, and ``table_of`` gives each a typed Core ``Table`` handle.
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
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel

from ledger.storage.types import Money, UTCDateTime

# INTEGER on SQLite so the key is the rowid; BIGINT on PostgreSQL.
SEQ = BigInteger().with_variant(Integer(), "sqlite")
HASH = String(64)


def table_of(model: type[SQLModel]) -> Table:
    """The Core ``Table`` a table model maps, typed (SQLModel leaves ``__table__`` untyped)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} does not map a table")
    return table


class LedgerSnapshot(SQLModel, table=True):
    """One version of a provider object, payload stored exactly as received."""

    __tablename__ = "ledger_snapshot"
    __table_args__ = (
        UniqueConstraint("external_id", "source", "kind", "version", name="uq_snapshot_version"),
        # tally's own records (period closes), found under the head lock on every append
        Index(
            "ix_snapshot_ledger_records",
            "kind",
            "external_id",
            sqlite_where=text("source = 'tally'"),
            postgresql_where=text("source = 'tally'"),
        ),
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
        Index("ix_journal_date", "date"),
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
    # Since migration 0007; null on older rows (their recorded time is their snapshot's).
    recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    meta: str | None = Field(default=None, sa_type=Text)  # canonical JSON, when not empty


class LedgerPosting(SQLModel, table=True):
    """One leg of a journal entry; positive = debit, negative = credit."""

    __tablename__ = "ledger_posting"
    __table_args__ = (
        ForeignKeyConstraint(["journal_seq"], ["ledger_journal.seq"], name="fk_posting_journal"),
    )

    journal_seq: int = Field(sa_type=SEQ, primary_key=True)
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    account: str = Field(sa_type=String(255))
    # A Stellar CODE:ISSUER is up to 69 characters: 80 on PostgreSQL since migration 0007;
    # SQLite never enforces a VARCHAR length, so its declared 32 stays (no table rebuild).
    currency: str = Field(sa_type=String(32).with_variant(String(80), "postgresql"))
    amount: Decimal = Field(sa_type=Money)
    # The gateway-quoted worth of the leg (migration 0007); null when no price was quoted.
    value: Decimal | None = Field(default=None, sa_type=Money)
    value_currency: str | None = Field(default=None, sa_type=String(32))


class LedgerHead(SQLModel, table=True):
    """The chain head: the last seq and its entry hash (one row, id = 1)."""

    __tablename__ = "ledger_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_head_single_row"),)

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(sa_type=SEQ)
    hash: str = Field(sa_type=HASH)


class SyncQuarantine(SQLModel, table=True):
    """A record that failed validation, kept with its reason and raw JSON."""

    __tablename__ = "sync_quarantine"
    __table_args__ = (UniqueConstraint("fingerprint", name="uq_quarantine_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of [source, kind, external_id, reason, raw]: the same bad record seen by every
    # re-sync is quarantined once (see ledger.storage.quarantine)
    fingerprint: str = Field(sa_type=HASH)
    source: str = Field(sa_type=String(32))
    kind: str = Field(sa_type=String(32))
    external_id: str | None = Field(default=None, sa_type=String(128))
    reason: str = Field(sa_type=Text)
    raw: str = Field(sa_type=Text)
    run_id: str | None = Field(default=None, sa_type=String(64))
    created_at: datetime = Field(sa_type=UTCDateTime)


SNAPSHOT = table_of(LedgerSnapshot)
JOURNAL = table_of(LedgerJournal)
POSTING = table_of(LedgerPosting)
HEAD = table_of(LedgerHead)
QUARANTINE = table_of(SyncQuarantine)

LEDGER_TABLES = ("ledger_snapshot", "ledger_journal", "ledger_posting")  # append-only
TABLES = (*LEDGER_TABLES, "ledger_head", "sync_quarantine")
