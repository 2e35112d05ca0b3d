"""``tally db upgrade`` (apply migrations; the Procfile's release step) and ``tally db status``."""

from __future__ import annotations

import argparse
import sys

from ledger.errors import LedgerError
from ledger.storage import engine as schema
from worker.app.commands import Subparsers
from worker.config import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("db", help="database schema: upgrade, status")
    action = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    action.add_parser("upgrade", help="apply every migration up to the newest").set_defaults(
        handler=upgrade
    )
    action.add_parser(
        "status", help="show the schema revision; exit 1 if it is behind"
    ).set_defaults(handler=status)


def upgrade(args: argparse.Namespace, settings: Settings) -> int:
    try:
        revision = schema.upgrade(settings.database_url)
    except LedgerError as exc:
        print(f"tally: {exc}", file=sys.stderr)
        return 1
    print(f"database at revision {revision}")
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    engine = schema.make_engine(settings.database_url)
    try:
        revision = schema.check_schema(engine)
    except LedgerError as exc:
        print(f"tally: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"database at revision {revision} (current)")
    return 0
