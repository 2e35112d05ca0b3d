"""``tally verify``: recompute the whole hash chain and report the first broken link, if any.

It ends by printing the head as ``SEQ:HASH``: publish that line somewhere the database's owner
cannot rewrite, and a later ``tally verify --expect-head SEQ:HASH`` proves the ledger still
holds it (a truncated or rewritten tail fails).
"""

from __future__ import annotations

import argparse
import sys

from ledger.errors import LedgerError
from ledger.storage.open import open_ledger
from ledger.storage.verify import parse_head, verify_store
from worker.app.commands import Subparsers, add_format, int_range, print_json
from worker.config import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every stored row against the hash chain (exit 1 if broken)",
        description="Recompute the whole hash chain, report the first broken link, and print "
        "the head as SEQ:HASH (publish it; a later --expect-head proves the ledger still "
        "holds it).",
    )
    parser.add_argument(
        "--batch",
        type=int_range(1, 100_000),
        default=1000,
        metavar="N",
        help="rows read per query, 1-100000 (default 1000)",
    )
    parser.add_argument(
        "--expect-head",
        type=_head,
        metavar="SEQ:HASH",
        help="fail unless the ledger still holds this head (as printed by an earlier verify)",
    )
    add_format(parser)
    parser.set_defaults(handler=verify, uses=("ledger",), needs_ledger=True)


def _head(text: str) -> tuple[int, str]:
    try:
        return parse_head(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        store = open_ledger(settings.database_url, settings.precision_table())
    except LedgerError as exc:
        print(f"tally: {exc}", file=sys.stderr)
        return 1
    try:
        report = verify_store(store, batch=args.batch, expect=args.expect_head)
    finally:
        store.close()
    if args.format == "json":
        print_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head": f"{report.head_seq}:{report.head_hash}",
                "broken_at": report.broken_at,
                "problem": report.problem,
            }
        )
    else:
        print(report.message())
    return 0 if report.ok else 1
