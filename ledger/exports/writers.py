"""Streaming writers for the snapshot and journal exports (JSON lines and CSV).

Each writer takes an iterator and a text stream, writes one line per row as it goes and keeps
nothing, so memory stays constant for any ledger size. Money is written as decimal strings.
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
    "account",
    "currency",
    "amount",
    "source",
    "external_id",
    "snapshot_seq",
    "description",
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
                "date": iso_utc(entry.date),
                "account": posting.account,
                "currency": posting.currency,
                "amount": fmt(posting.amount),
                "source": entry.source,
                "external_id": entry.external_id,
                "snapshot_seq": entry.snapshot_seq,
                "description": entry.description,
            }


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
    """CSV with a header row; ``None`` (an entry not yet stored has no seq) becomes empty."""
    writer = csv.DictWriter(out, fieldnames=JOURNAL_COLUMNS, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    count = 0
    for row in posting_rows(entries):
        writer.writerow(row)
        count += 1
    return count
