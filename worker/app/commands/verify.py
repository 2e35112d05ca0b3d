"""``tally verify``: recompute the whole hash chain and report the first broken link, if any."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ledger.errors import LedgerError
from ledger.storage.engine import open_ledger
from ledger.storage.verify import verify_store
from worker.config import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify", help="check every stored row against the hash chain (exit 1 if broken)"
    )
    parser.add_argument(
        "--batch", type=int, default=1000, metavar="N", help="rows read per query (default 1000)"
    )
    parser.set_defaults(handler=verify)


def verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        store = open_ledger(settings.database_url, settings.precision_table())
    except LedgerError as exc:
        print(f"tally: {exc}", file=sys.stderr)
        return 1
    try:
        report = verify_store(store, batch=max(1, args.batch))
    finally:
        store.close()
    print(report.message())
    return 0 if report.ok else 1
