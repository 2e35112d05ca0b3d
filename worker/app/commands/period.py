"""``tally period close --through DATE`` and ``tally period list``: close the books.

A close is appended to the chain (it seals the head at that moment, and ``tally verify`` checks
the seal); afterwards nothing is ever dated on or before the closed day: a late correction is
booked on the first open day, keeping its effective date as metadata (docs/accounting.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime

from ledger.journal.periods import CloseRefused, PeriodClose
from ledger.storage.open import open_ledger
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.errors import TallyError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "period", help="close the books through a date, or list the closes", description=__doc__
    )
    action = parser.add_subparsers(dest="period_action", metavar="ACTION", required=True)
    close = action.add_parser("close", help="close the books through a day (UTC)")
    close.add_argument("--through", required=True, type=_day, metavar="YYYY-MM-DD")
    close.add_argument("--note", default="", help="why, or by whom (kept in the chain)")
    close.set_defaults(handler=close_books, uses=("ledger",), needs_ledger=True)
    listing = action.add_parser("list", help="every close, oldest first")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(handler=list_closes, uses=("ledger",), needs_ledger=True)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def close_books(args: argparse.Namespace, settings: Settings) -> int:
    store = open_ledger(settings.database_url, settings.precision_table(), auto_upgrade=False)
    try:
        closed = store.close_period(args.through, now=datetime.now(UTC), note=args.note)
    except CloseRefused as exc:
        raise TallyError(str(exc)) from None
    finally:
        store.close()
    print(
        f"books closed through {closed.through.isoformat()}: sealed head "
        f"{closed.sealed_seq}:{closed.sealed_hash}"
    )
    return 0


def as_json(close: PeriodClose) -> dict[str, object]:
    return {
        "through": close.through.isoformat(),
        "closed_at": close.closed_at.isoformat().replace("+00:00", "Z"),
        "sealed_head": f"{close.sealed_seq}:{close.sealed_hash}",
        "seq": close.seq,
        "note": close.note,
    }


def list_closes(args: argparse.Namespace, settings: Settings) -> int:
    store = open_ledger(settings.database_url, settings.precision_table(), auto_upgrade=False)
    try:
        closes = store.periods()
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps([as_json(c) for c in closes], indent=2) + "\n")
        return 0
    if not closes:
        print("no period closed yet")
        return 0
    print(f"{'THROUGH':<10}  {'CLOSED AT':<20}  {'SEALED HEAD':<16}  NOTE")
    for c in closes:
        closed_at = c.closed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        head = f"{c.sealed_seq}:{c.sealed_hash[:12]}"
        print(f"{c.through.isoformat():<10}  {closed_at:<20}  {head:<16}  {c.note}".rstrip())
    return 0
