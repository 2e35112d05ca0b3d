"""Reconciliation state: alerts, their event log and deliveries, reconcile cursor and indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE = sa.text("status <> 'resolved'")
_AMOUNTS = ("expected", "actual", "difference", "tolerance")  # exact decimal text


def _alert() -> None:
    op.create_table(
        "alert",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(32), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=False) for name in _AMOUNTS),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("snapshot_seqs", sa.Text(), nullable=False),
        sa.Column("suspense_journal_seq", sa.BigInteger(), nullable=True),
        sa.Column("suspense_journal_key", sa.String(255), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index(
        "uq_alert_live",
        "alert",
        ["source", "rule", "subject_id", "check_name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index("ix_alert_subject", "alert", ["source", "subject_id"])
    op.create_index("ix_alert_status", "alert", ["status", "id"])


def upgrade() -> None:
    _alert()
    op.create_table(
        "alert_event",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("notify", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name="fk_alert_event_alert"),
    )
    op.create_index("ix_alert_event_alert", "alert_event", ["alert_id", "revision"])
    op.create_index("ix_alert_event_outbox", "alert_event", ["notify", "at"])
    op.create_table(
        "alert_delivery",
        sa.Column("alert_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("revision", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("sink", sa.String(32), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "reconcile_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_full_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "reconcile_link",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("link", sa.String(32), primary_key=True),
        sa.Column("from_id", sa.String(128), primary_key=True),
        sa.Column("to_id", sa.String(128), primary_key=True),
    )
    op.create_table(
        "reconcile_wait",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("subject_id", sa.String(128), primary_key=True),
        sa.Column("since", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "reconcile_wait",
        "reconcile_link",
        "reconcile_cursor",
        "alert_delivery",
        "alert_event",
        "alert",
    ):
        op.drop_table(table)
