"""Initial schema: append-only ledger tables with their triggers, chain head, sync state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.model import GENESIS_HASH
from ledger.storage import triggers
from ledger.storage.types import Money, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _hashes() -> list[sa.Column[str]]:
    return [
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "ledger_snapshot",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        *_hashes(),
        sa.UniqueConstraint("external_id", "source", "kind", "version", name="uq_snapshot_version"),
    )
    op.create_table(
        "ledger_journal",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("date", UTCDateTime(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("object_kind", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("snapshot_seq", SEQ, nullable=False),
        sa.Column("reverses_key", sa.String(255), nullable=True),
        *_hashes(),
        sa.UniqueConstraint("key", name="uq_journal_key"),
        sa.ForeignKeyConstraint(
            ["snapshot_seq"], ["ledger_snapshot.seq"], name="fk_journal_snapshot"
        ),
        sa.ForeignKeyConstraint(
            ["reverses_key"], ["ledger_journal.key"], name="fk_journal_reverses"
        ),
    )
    op.create_index(
        "ix_journal_object", "ledger_journal", ["external_id", "source", "object_kind", "seq"]
    )
    op.create_table(
        "ledger_posting",
        sa.Column("journal_seq", SEQ, primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("account", sa.String(255), nullable=False),
        sa.Column("currency", sa.String(32), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.ForeignKeyConstraint(["journal_seq"], ["ledger_journal.seq"], name="fk_posting_journal"),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_head_single_row"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "sync_cursor",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("feed", sa.String(64), primary_key=True),
        sa.Column("high_water", UTCDateTime(), nullable=True),
        sa.Column("last_full_scan_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "sync_quarantine",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("fingerprint", name="uq_quarantine_fingerprint"),
    )
    op.create_table(
        "sync_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "sync_tick",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("tick", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in triggers.install_statements(dialect):
        op.execute(statement)


def downgrade() -> None:
    for statement in triggers.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    for table in (
        "sync_tick",
        "sync_lease",
        "sync_quarantine",
        "sync_cursor",
        "ledger_head",
        "ledger_posting",
        "ledger_journal",
        "ledger_snapshot",
    ):
        op.drop_table(table)
