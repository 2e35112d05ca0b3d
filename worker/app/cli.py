"""The ``tally`` command: parse arguments, load settings, configure logging, run one command.

Each command lives in ``worker/commands/<name>.py`` and exposes ``register(subparsers)``, which
adds its parser and sets ``handler(args, settings) -> int``. Errors meant for people become one
line on stderr and a non-zero exit; no traceback is a user interface.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from types import ModuleType

from ledger.errors import LedgerError
from worker.errors import TallyError

COMMAND_MODULES = (
    "worker.app.commands.db",
    "worker.app.commands.verify",
    "worker.app.commands.export",
    "worker.app.commands.sync",
    "worker.app.commands.processes",
    "worker.app.commands.quarantine",
    "worker.app.commands.reconcile",
    "worker.app.commands.alerts",
    "worker.app.commands.health",
    "worker.app.commands.status",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tally",
        description="Append-only ledger of crypto payments and refunds, synced from gateways.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


PLUGIN_GROUP = "tally.commands"


def command_modules() -> Iterator[ModuleType]:
    """The built-in command modules, then those installed packages add (sorted by name)."""
    for name in COMMAND_MODULES:
        yield importlib.import_module(name)
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        yield entry.load()


def main(argv: Sequence[str] | None = None) -> int:
    from worker.config import load_settings
    from worker.logging import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
        configure_logging(
            settings.tally_log_level, settings.tally_log_format, settings.secret_values()
        )
        return int(args.handler(args, settings) or 0)
    except (TallyError, LedgerError) as exc:
        print(f"tally: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tally: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
