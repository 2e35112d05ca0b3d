"""Books a controller can close: each journal entry's recorded time and metadata (value
provenance, flags, original date), each posting's gateway-quoted value, and an index to find
period closes (tally's own ``period-close`` snapshots) inside an append.

Columns are added nullable, so existing rows keep their bytes and their hashes: the chain
record includes the new fields only when they are set (ledger/chain.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage.types import Money, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Stellar assets are posted as CODE:ISSUER (up to 69 characters). SQLite does not enforce
    # VARCHAR lengths; on PostgreSQL widening a varchar rewrites nothing and fires no trigger.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("ledger_posting", "currency", type_=sa.String(80))
        op.alter_column("alert", "currency", type_=sa.String(80))
    op.add_column("ledger_journal", sa.Column("recorded_at", UTCDateTime(), nullable=True))
    op.add_column("ledger_journal", sa.Column("meta", sa.Text(), nullable=True))
    op.add_column("ledger_posting", sa.Column("value", Money(), nullable=True))
    op.add_column("ledger_posting", sa.Column("value_currency", sa.String(32), nullable=True))
    op.create_index("ix_journal_date", "ledger_journal", ["date"])
    tally_only = sa.text("source = 'tally'")
    op.create_index(
        "ix_snapshot_ledger_records",
        "ledger_snapshot",
        ["kind", "external_id"],
        sqlite_where=tally_only,
        postgresql_where=tally_only,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("ledger_posting", "currency", type_=sa.String(32))
        op.alter_column("alert", "currency", type_=sa.String(32))
    op.drop_index("ix_snapshot_ledger_records", table_name="ledger_snapshot")
    op.drop_index("ix_journal_date", table_name="ledger_journal")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch rebuild would drop the ledger
    # tables' append-only triggers along with the old table.
    for table, column in (
        ("ledger_posting", "value_currency"),
        ("ledger_posting", "value"),
        ("ledger_journal", "meta"),
        ("ledger_journal", "recorded_at"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
