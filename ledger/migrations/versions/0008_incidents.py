"""Incidents: an alert carries its severity, every failing check as evidence, the related
subjects, and how a person resolved it (corrected, write-off to an account, explained).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ("severity", "evidence", "related", "resolution", "resolution_account")


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(
            sa.Column("severity", sa.String(16), nullable=False, server_default="warn")
        )
        batch.add_column(sa.Column("evidence", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("related", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("resolution", sa.String(16), nullable=True))
        batch.add_column(sa.Column("resolution_account", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:  # SQLite rebuilds the table to drop a column
        for name in reversed(COLUMNS):
            batch.drop_column(name)
