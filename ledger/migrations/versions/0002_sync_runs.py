"""Sync run bookkeeping: runs, their per-feed page plans, and the pages/objects each run did.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_run",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "sync_run_feed",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("feed", sa.String(64), primary_key=True),
        sa.Column("pages_expected", sa.Integer(), nullable=False),
        sa.Column("newest_seen", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "sync_run_item",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("item", sa.String(200), primary_key=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("new_snapshots", sa.Integer(), nullable=False),
        sa.Column("journal_entries", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("sync_run_item", "sync_run_feed", "sync_run"):
        op.drop_table(table)
