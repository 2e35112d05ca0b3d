"""The ``tally`` command: parse arguments, load settings, configure logging, run one command.

Each command lives in ``worker/commands/<name>.py`` and exposes ``register(subparsers)``, which
adds its parser and sets ``handler(args, settings) -> int``. Errors meant for people become one
line on stderr and a non-zero exit; no traceback is a user interface.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ledger.errors import LedgerError
from worker.errors import TallyError

COMMAND_MODULES = (
    "worker.commands.sandbox",
    "worker.commands.db",
    "worker.commands.verify",
    "worker.commands.export",
    "worker.commands.sync",
    "worker.commands.processes",
    "worker.commands.quarantine",
    "worker.commands.reconcile",
    "worker.commands.alerts",
    "worker.commands.demo",
    "worker.commands.health",
    "worker.commands.status",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tally",
        description="Append-only ledger of crypto payments and refunds, synced from gateways.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command not built yet
                continue
            raise
        module.register(subparsers)
    return parser


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
