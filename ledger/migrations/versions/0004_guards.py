"""Append-only against every statement: no REPLACE on SQLite, triggers that fire even for a
replica-role session on PostgreSQL, and a chain head that only moves forward.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

from ledger.storage import triggers

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in triggers.guard_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in triggers.guard_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
