"""``tally quarantine list``: the records that failed validation, with reason and raw JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from ledger import jsonx
from ledger.exports.writers import iso_utc
from ledger.storage.open import open_ledger
from worker.app.commands import Subparsers
from worker.config import Settings

BATCH = 500


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "quarantine",
        help="records that failed validation",
        description="Records a gateway sent that failed validation, kept with the reason and "
        "their raw JSON (the rest of their page was written).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="list quarantined records, oldest first",
        description="List quarantined records, oldest first.",
    )
    listing.add_argument("--source", metavar="SOURCE", help="only this source (e.g. aurpay)")
    listing.add_argument(
        "--format",
        choices=["table", "jsonl"],
        default="table",
        help="table for people (default), jsonl: one JSON object per record",
    )
    listing.set_defaults(handler=list_quarantine, uses=("ledger",), needs_ledger=True)


def rows(settings: Settings, source: str | None) -> Iterator[dict[str, Any]]:
    """Every quarantined record, streamed in id order (keyset pages, constant memory)."""
    store = open_ledger(settings.database_url, settings.precision_table(), auto_upgrade=False)
    try:
        yield from store.iter_quarantined(source or None, BATCH)
    finally:
        store.close()


def list_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    count = 0
    for row in rows(settings, args.source):
        count += 1
        created = iso_utc(row["created_at"])
        if args.format == "jsonl":
            record = {
                "id": row["id"],
                "source": row["source"],
                "kind": row["kind"],
                "external_id": row["external_id"],
                "reason": row["reason"],
                "run_id": row["run_id"],
                "created_at": created,
                "raw": _raw(row["raw"]),
            }
            sys.stdout.write(jsonx.dumps(record) + "\n")
        else:
            print(
                f"{row['id']:>5}  {created}  {row['source']}/{row['kind']}  "
                f"{row['external_id'] or '-'}  {row['reason']}\n       raw: {row['raw']}"
            )
    if args.format == "table":
        print(f"{count} quarantined record(s)")
    return 0


def _raw(text: str) -> Any:
    """The raw JSON as a JSON value again (text that never parsed stays a string)."""
    try:
        return jsonx.loads(text)
    except jsonx.InvalidJSON:
        return text
