"""Re-importing the journal CSV as an accounting system would: debit minus credit, exactly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal


def reimport(text: str) -> dict[tuple[str, str], Decimal]:
    """Balance per (account, currency) from the CSV's rows, read back as exact decimals.
    Every row has one side only, and every entry's rows balance per currency."""
    totals: dict[tuple[str, str], Decimal] = {}
    per_entry: dict[tuple[str, str], Decimal] = {}
    for row in csv.DictReader(io.StringIO(text, newline="")):
        assert bool(row["debit"]) != bool(row["credit"]), row  # one side, never both
        amount = Decimal(row["debit"] or "0") - Decimal(row["credit"] or "0")
        key = (row["account"], row["currency"])
        totals[key] = totals.get(key, Decimal(0)) + amount
        entry = (row["entry"], row["currency"])
        per_entry[entry] = per_entry.get(entry, Decimal(0)) + amount
    assert set(per_entry.values()) <= {Decimal(0)}
    return totals
