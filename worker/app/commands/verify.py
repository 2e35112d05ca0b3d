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
from worker.app.commands import Subparsers
from worker.config import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="check every stored row against the hash chain (exit 1 if broken)"
    )
    parser.add_argument(
        "--batch", type=int, default=1000, metavar="N", help="rows read per query (default 1000)"
    )
    parser.add_argument(
        "--expect-head",
        type=_head,
        metavar="SEQ:HASH",
        help="fail unless the ledger still holds this head (as printed by an earlier verify)",
    )
    parser.set_defaults(handler=verify)


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
        report = verify_store(store, batch=max(1, args.batch), expect=args.expect_head)
    finally:
        store.close()
    print(report.message())
    return 0 if report.ok else 1
