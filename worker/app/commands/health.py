"""``tally health``: is this deployment ready? One line, exit 0 (ready) or 1 (not ready).

A process's ``/readyz`` checks (the database is reachable and migrated, the broker answers)
plus what a probe must not gate on: every configured source finished a sync within
TALLY_READY_MAX_SYNC_AGE_SECONDS, and, once a scheduler ran, its recovery checked every source
since it started.
"""

from __future__ import annotations

import argparse

from ledger.storage.engine import make_engine
from worker.app.commands import Subparsers, add_format, print_json
from worker.config import Settings
from worker.ops.health import deployment_readiness


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "health",
        help="check the database, broker and sync age; exit 1 with the reason if not",
        description="From outside: the database is reachable and migrated, the broker "
        "answers (what /readyz checks), and every source synced recently. One line; "
        "exit 0 when ready, 1 when not.",
    )
    add_format(parser)
    parser.set_defaults(
        handler=health, uses=("ledger", "broker", "sources", "process"), needs_ledger=True
    )


def health(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        report = deployment_readiness(settings, engine)
    finally:
        engine.dispose()
    if args.format == "json":
        print_json(report.to_json())
    else:
        print(report.reason)
    return 0 if report.ok else 1
