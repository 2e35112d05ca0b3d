"""The bounds the edge checks against are the columns' own, and time parsing never raises."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table
from sqlmodel import SQLModel

from ledger.alerts.tables import ALERT_TABLES
from ledger.model import MAX_CURRENCY, MAX_EXTERNAL_ID
from ledger.storage.sync_tables import SYNC_RUN_ITEM
from ledger.storage.tables import JOURNAL, POSTING, QUARANTINE, SNAPSHOT
from ledger.timeparse import parse_timestamp

BOUNDED = {
    "subject_id": MAX_EXTERNAL_ID,
    "from_id": MAX_EXTERNAL_ID,
    "to_id": MAX_EXTERNAL_ID,
    "currency": MAX_CURRENCY,
}


def length(table: Table, column: str) -> Any:
    """The column's length where it is enforced (PostgreSQL; SQLite never enforces one)."""
    kind = table.c[column].type
    kind = kind._variant_mapping.get("postgresql", kind)  # a with_variant() type
    return getattr(kind, "length", None)


def test_ids_and_currencies_fit_every_column_that_holds_them() -> None:
    for table in (SNAPSHOT, JOURNAL, QUARANTINE):
        assert length(table, "external_id") == MAX_EXTERNAL_ID, table.name
    assert length(POSTING, "currency") == MAX_CURRENCY
    # The alert tables keep subjects, links and currencies taken from the same objects.
    checked = []
    for table in (SQLModel.metadata.tables[name] for name in ALERT_TABLES):
        for column, bound in BOUNDED.items():
            if column in table.c:
                assert length(table, column) == bound, f"{table.name}.{column}"
                checked.append(f"{table.name}.{column}")
    assert {"alert.subject_id", "alert.currency", "reconcile_link.to_id"} <= set(checked)
    # A run item names one object as "<kind>:<id>"; kinds are 32 characters at most.
    assert length(SYNC_RUN_ITEM, "item") >= length(SNAPSHOT, "kind") + 1 + MAX_EXTERNAL_ID


@pytest.mark.parametrize(
    "text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2025-02-30T00:00:00"]
)
def test_an_overflowing_or_impossible_timestamp_parses_as_none(text: str) -> None:
    assert parse_timestamp(text) is None
