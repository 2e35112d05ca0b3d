"""Recovery at start-up: runs marked interrupted, recovery's notes per source, and an index for a
source's recent runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_run", sa.Column("interrupted_at", UTCDateTime(), nullable=True))
    op.create_index("ix_sync_run_source_started", "sync_run", ["source", "started_at"])
    op.create_table(
        "sync_recovery",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("pending_follow_ups", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_recovery")
    op.drop_index("ix_sync_run_source_started", table_name="sync_run")
    with op.batch_alter_table("sync_run") as batch:  # SQLite rebuilds the table to drop a column
        batch.drop_column("interrupted_at")
