"""``tally health``: is this deployment ready? One line, exit 0 (ready) or 1 (not ready).

The same checks as a process's ``/readyz``: the database is reachable and migrated, the broker
answers, and every configured source finished a sync within TALLY_READY_MAX_SYNC_AGE_SECONDS;
and, once a scheduler ran, its recovery checked every source since it started.
"""

from __future__ import annotations

import argparse

from ledger.storage.engine import make_engine
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.ops.health import deployment_readiness


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "health", help="check the database, broker and sync age; exit 1 with the reason if not"
    )
    parser.set_defaults(handler=health)


def health(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        report = deployment_readiness(settings, engine)
    finally:
        engine.dispose()
    print(report.reason)
    return 0 if report.ok else 1
