"""Ebioro's rule ids lose their ``ebioro-`` prefix: an alert is scoped by its source already, and
a gateway's rules now serve every account of it (``ebioro``, ``ebioro-eu``, …).

Without this rename, an alert opened under an old id would never be judged again and would stay
open for ever, while the same problem opened anew under the new id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PREFIX = "ebioro-"
RULES = (
    "payment-amounts",
    "refunds-exceed-paid",
    "refunded-without-refund",
    "refund-settlement-id",
    "refund-asset",
    "refund-exceeds-paid",
)


def upgrade() -> None:
    for rule in RULES:
        op.execute(f"UPDATE alert SET rule = '{rule}' WHERE rule = '{PREFIX}{rule}'")


def downgrade() -> None:
    for rule in RULES:
        op.execute(f"UPDATE alert SET rule = '{PREFIX}{rule}' WHERE rule = '{rule}'")
