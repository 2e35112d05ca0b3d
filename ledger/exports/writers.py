"""Streaming writers for the snapshot and journal exports (JSON lines and CSV).

Each writer takes an iterator and a text stream, writes one line per row as it goes and keeps
nothing, so memory stays constant for any ledger size. Money is written as decimal strings.
The JSON lines keep every field as stored (signed ``amount``, times to the microsecond); the
CSV is the accountant's form (``CSV_COLUMNS``): ISO dates, debit and credit columns.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from ledger import chain, jsonx
from ledger.model import JournalEntry, Snapshot
from ledger.money import fmt
from ledger.timeparse import as_utc

JOURNAL_COLUMNS: tuple[str, ...] = (
    "journal_id",
    "seq",
    "date",
    "recorded_at",
    "account",
    "currency",
    "amount",
    "value",
    "value_currency",
    "source",
    "external_id",
    "snapshot_seq",
    "description",
    "reverses",
    "original_date",
    "value_source",
)

# The journal CSV an accounting system or spreadsheet imports: one row per posting, a debit or
# a credit (never both, never signed), the entry's key to group and to follow ``reverses``.
CSV_COLUMNS: tuple[str, ...] = (
    "date",  # effective date, YYYY-MM-DD (UTC)
    "recorded_at",  # when tally recorded the entry, ISO-8601 UTC to the second
    "entry",  # the entry's key: groups its rows; what ``reverses`` points at
    "account",
    "debit",
    "credit",
    "currency",
    "value",  # the leg's fiat worth by the gateway's quote, signed like debit − credit
    "value_currency",
    "memo",
    "reference",  # the gateway's id of the object (order, payment, refund)
    "reverses",  # the key of the entry this one reverses
)


def iso_utc(moment: datetime) -> str:
    """The chain's own text form (``…T06:13:16.000000Z``), so exported rows can be re-hashed.

    A naive value is taken as UTC (the store always returns aware UTC datetimes).
    """
    return chain.iso_utc(as_utc(moment))


def snapshot_row(snapshot: Snapshot) -> dict[str, Any]:
    """The export row of one snapshot; the payload is the provider object exactly as received."""
    return {
        "seq": snapshot.seq,
        "source": snapshot.source,
        "kind": snapshot.kind,
        "external_id": snapshot.external_id,
        "version": snapshot.version,
        "observed_at": iso_utc(snapshot.observed_at),
        "content_hash": snapshot.content_hash,
        "prev_hash": snapshot.prev_hash,
        "entry_hash": snapshot.entry_hash,
        "payload": snapshot.payload,
    }


def posting_rows(entries: Iterable[JournalEntry]) -> Iterator[dict[str, Any]]:
    """One row per posting, in entry order then posting order; amounts as decimal strings."""
    for entry in entries:
        for posting in entry.postings:
            yield {
                "journal_id": entry.key,
                "seq": entry.seq,
                "date": iso_utc(entry.date),  # effective: when the economic event happened
                "recorded_at": None if entry.recorded_at is None else iso_utc(entry.recorded_at),
                "account": posting.account,
                "currency": posting.currency,
                "amount": fmt(posting.amount),
                "value": None if posting.value is None else fmt(posting.value),
                "value_currency": posting.value_currency,
                "source": entry.source,
                "external_id": entry.external_id,
                "snapshot_seq": entry.snapshot_seq,
                "description": entry.description,
                "reverses": entry.reverses_key,
                "original_date": entry.meta.get("original_date"),
                "value_source": entry.meta.get("value_source"),
            }


def csv_rows(entries: Iterable[JournalEntry]) -> Iterator[dict[str, str]]:
    """``CSV_COLUMNS`` rows: one per posting, in entry order then posting order."""
    for entry in entries:
        day = as_utc(entry.date).date().isoformat()
        recorded = "" if entry.recorded_at is None else _seconds_z(entry.recorded_at)
        for posting in entry.postings:
            amount = posting.amount
            yield {
                "date": day,
                "recorded_at": recorded,
                "entry": entry.key,
                "account": posting.account,
                "debit": fmt(amount) if amount >= 0 else "",
                "credit": fmt(amount.copy_negate()) if amount < 0 else "",  # exact: no context
                "currency": posting.currency,
                "value": "" if posting.value is None else fmt(posting.value),
                "value_currency": posting.value_currency or "",
                "memo": entry.description,
                "reference": entry.external_id,
                "reverses": entry.reverses_key or "",
            }


def _seconds_z(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write one compact JSON object per line (keys in row order); return the row count."""
    count = 0
    for row in rows:
        out.write(jsonx.dumps(row))
        out.write("\n")
        count += 1
    return count


def write_snapshots_jsonl(snapshots: Iterable[Snapshot], out: TextIO) -> int:
    return write_jsonl((snapshot_row(s) for s in snapshots), out)


def write_journal_jsonl(entries: Iterable[JournalEntry], out: TextIO) -> int:
    return write_jsonl(posting_rows(entries), out)


def write_journal_csv(entries: Iterable[JournalEntry], out: TextIO) -> int:
    """``CSV_COLUMNS`` with a header row; an empty cell is a missing value."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    count = 0
    for row in csv_rows(entries):
        writer.writerow(row)
        count += 1
    return count
