"""``tally db upgrade`` (apply migrations; the Procfile's release step) and ``tally db status``."""

from __future__ import annotations

import argparse
import sys

from ledger.errors import LedgerError
from ledger.storage import engine as schema
from worker.app.commands import Subparsers, add_format, print_json
from worker.config import Settings
from worker.errors import public_url


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "db",
        help="database schema: upgrade, status",
        description="Create or migrate the ledger's schema, or say whether it is current.",
    )
    action = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    action.add_parser(
        "upgrade",
        help="apply every migration up to the newest",
        description="Apply every migration up to the newest (creates the database if needed).",
    ).set_defaults(handler=upgrade, uses=("ledger",))
    status_parser = action.add_parser(
        "status",
        help="show the schema revision; exit 1 if it is behind",
        description="Show the schema revision; exit 1 if it is behind. Never creates a ledger.",
    )
    add_format(status_parser)
    status_parser.set_defaults(handler=status, uses=("ledger",), needs_ledger=True)


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
    revision, problem = None, None
    try:
        revision = schema.check_schema(engine)
    except LedgerError as exc:
        problem = str(exc)
    finally:
        engine.dispose()
    if args.format == "json":
        print_json(
            {
                "database": public_url(settings.database_url),
                "current": problem is None,
                "revision": revision,
                "problem": problem,
            }
        )
    elif problem is None:
        print(f"database at revision {revision} (current)")
    else:
        print(f"tally: {problem}", file=sys.stderr)
    return 0 if problem is None else 1
