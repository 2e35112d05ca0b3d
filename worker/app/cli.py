"""The ``tally`` command: parse arguments, load settings, configure logging, run one command.

Each command lives in ``worker/app/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``handler(args, settings) -> int``, plus what the command needs:
``uses`` (the settings groups it validates, ``worker.config.GROUPS``; all when unset) and
``needs_ledger`` (it only reads, so a missing SQLite file is an error, never created).

Only the chosen command's module is imported (``COMMANDS`` holds each one's one-line help), so
``tally --help`` never loads SQLAlchemy, Alembic or dramatiq. Errors meant for people become one
line on stderr and a non-zero exit; no traceback is a user interface.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points, version
from importlib.util import find_spec
from types import ModuleType
from typing import Any

# Sub-command → (its module, one-line help). A module may register several sub-commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": (
        "worker.app.commands.doctor",
        "check settings, database, Redis and each source's credentials, with fixes",
    ),
    "db": ("worker.app.commands.db", "database schema: upgrade, status"),
    "verify": (
        "worker.app.commands.verify",
        "check every stored row against the hash chain (exit 1 if broken)",
    ),
    "export": (
        "worker.app.commands.export",
        "write snapshots, the journal, a Beancount ledger or QuickBooks/Xero journals",
    ),
    "balances": ("worker.app.commands.export", "balance per account and currency"),
    "sync": ("worker.app.commands.sync", "sync every source once, then exit"),
    "worker": (
        "worker.app.commands.processes",
        "consume sync and alert messages (scaled deployment)",
    ),
    "scheduler": ("worker.app.commands.processes", "enqueue periodic syncs (one active copy)"),
    "callbacks": ("worker.app.commands.processes", "serve provider callbacks"),
    "run": (
        "worker.app.commands.processes",
        "the whole service in one process (embedded defaults)",
    ),
    "quarantine": ("worker.app.commands.quarantine", "records that failed validation"),
    "reconcile": (
        "worker.app.commands.reconcile",
        "check the ledger's amounts and update the alerts",
    ),
    "alerts": (
        "worker.app.commands.alerts",
        "list alerts (filtered or grouped); show one; ack or resolve several",
    ),
    "health": (
        "worker.app.commands.health",
        "check the database, broker and sync age; exit 1 with the reason if not",
    ),
    "status": (
        "worker.app.commands.status",
        "one screen: sources, lag, ledger size and head, open alerts",
    ),
    "period": ("worker.app.commands.period", "close the books through a date, or list the closes"),
    "adjust": (
        "worker.app.commands.adjust",
        "post a manual adjusting entry (balanced, with a reason)",
    ),
    "unpriced": (
        "worker.app.commands.unpriced",
        "list entries with no fiat value (flagged no-price)",
    ),
    "console": (
        "worker.app.commands.console",
        "serve the web console: sources, alerts, ledger, runs",
    ),
}
# Kept for callers that walk the built-in modules (each once, in order).
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))

PLUGIN_GROUP = "tally.commands"
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `… | head -1`


def plugins() -> dict[str, EntryPoint]:
    """Sub-commands installed packages add (``tally.commands`` entry points), by name."""
    found = {entry.name: entry for entry in entry_points(group=PLUGIN_GROUP)}
    return dict(sorted(found.items()))


def plugin_help(entry: EntryPoint) -> str:
    """A plugin's one-line help: its module docstring's first line, read without importing it
    (``tally sandbox``'s imports are as heavy as any)."""
    spec = find_spec(entry.module)
    text = ""
    if spec is not None and spec.origin and spec.origin.endswith(".py"):
        with open(spec.origin, encoding="utf-8") as source:
            text = ast.get_docstring(ast.parse(source.read())) or ""
    first = text.split("\n\n", 1)[0].replace("\n", " ")
    return re.sub(r"^``[^`]*``:\s*", "", first).rstrip(".")


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line naming it (the usage is a --help away), and
    a sub-command's help doubles as its description when it has none of its own.

    Every number has a range: a bare ``type=int`` means a whole number from 0 to 2**63 - 1
    (what a database integer holds; ids, counts), a bare ``type=float`` a finite number from 0.
    Narrower ranges use ``worker.app.commands.int_range`` / ``float_range``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubCommands)

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        from worker.app.commands import float_range, int_range

        if kwargs.get("type") is int:
            kwargs["type"] = int_range(0, 2**63 - 1)
        elif kwargs.get("type") is float:
            kwargs["type"] = float_range(0, 1e300)
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _SubCommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if kwargs.get("help") and not kwargs.get("description"):
            text = str(kwargs["help"])
            kwargs["description"] = text[:1].upper() + text[1:] + "."
        return super().add_parser(name, **kwargs)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command; with ``only``, that sub-command's module registers
    its real parsers and the others are listed by name and help alone ("": none loaded)."""
    parser = Parser(
        prog="tally",
        description="Append-only ledger of crypto payments and refunds, synced from gateways.",
        epilog="Run `tally COMMAND --help` for a command's options. Docs: README.md, docs/.",
    )
    parser.add_argument("--version", action="version", version=f"tally {version('tally')}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log lines on a terminal (-v info, -vv debug)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    extra = plugins()
    listed = {name: help for name, (_, help) in COMMANDS.items()}
    for name, module_name in _modules_for(only, extra):
        registered = set(subparsers.choices)
        _load(module_name, extra).register(subparsers)
        for new in set(subparsers.choices) - registered:
            listed.pop(new, None)
        listed.pop(name, None)
    for name in list(listed) + [n for n in extra if n not in subparsers.choices]:
        if name in subparsers.choices:
            continue
        text = listed.get(name) or plugin_help(extra[name])
        subparsers.add_parser(name, help=text, add_help=False)
    return parser


def _modules_for(only: str | None, extra: dict[str, EntryPoint]) -> list[tuple[str, str]]:
    if only is None:
        names = [*COMMANDS, *extra]
    elif only in COMMANDS or only in extra:
        names = [only]
    else:
        return []
    seen: dict[str, str] = {}
    for name in names:
        module = COMMANDS[name][0] if name in COMMANDS else f"plugin:{name}"
        seen.setdefault(module, name)
    return [(name, module) for module, name in seen.items()]


def _load(module_name: str, extra: dict[str, EntryPoint]) -> ModuleType:
    if module_name.startswith("plugin:"):
        loaded: ModuleType = extra[module_name.removeprefix("plugin:")].load()
        return loaded
    return importlib.import_module(module_name)


def _chosen(argv: Sequence[str]) -> str | None:
    """The sub-command's name: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(args_list)
        sys.stdout.flush()  # a closed pipe shows here, not as a warning at exit
        return code
    except BrokenPipeError:
        # The reader (`| head -1`) has what it wanted: leave quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE


def _main(argv: list[str]) -> int:
    parser = build_parser(_chosen(argv) or "")
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Any], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2

    from ledger.errors import LedgerError
    from worker.config import load_settings
    from worker.errors import TallyError, unreachable
    from worker.logging import configure_logging

    settings = None
    try:
        settings = load_settings(uses=getattr(args, "uses", None))
        configure_logging(
            settings.tally_log_level,
            settings.tally_log_format,
            settings.secret_values(),
            verbosity=args.verbose,
            level_set="tally_log_level" in settings.model_fields_set,
        )
        if getattr(args, "needs_ledger", False):
            _require_ledger(settings.database_url)
        return int(handler(args, settings) or 0)
    except (TallyError, LedgerError) as exc:
        print(f"tally: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tally: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        line = unreachable(exc, settings)
        if line is None:
            raise  # a bug: its traceback is for us
        print(f"tally: {line}", file=sys.stderr)
        return 1


def _require_ledger(database_url: str) -> None:
    """A command that only reads never creates a database: a missing SQLite file is an error."""
    from worker.errors import TallyError

    if not database_url.startswith("sqlite:///"):
        return  # a server database, or SQLite in memory
    path = database_url.removeprefix("sqlite:///").split("?", 1)[0]
    if path and path != ":memory:" and not os.path.exists(path):
        raise TallyError(f"no ledger at {database_url} (run tally sync or tally db upgrade)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
