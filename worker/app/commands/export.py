"""``tally export snapshots|journal|beancount`` and ``tally balances``: read the ledger out.

Every export streams from the store to stdout or, with ``--output``, to a temporary file beside
the target that replaces it only once complete, so a reader never sees half an export.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import TextIO

import structlog

from ledger.exports.beancount import write_beancount
from ledger.exports.writers import write_journal_csv, write_journal_jsonl, write_snapshots_jsonl
from ledger.journal.balances import (
    end_of_day,
    fold_balances,
    json_rows,
    render_table,
    sorted_balances,
)
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.errors import TallyError

log = structlog.get_logger(__name__)


def register(subparsers: Subparsers) -> None:
    export = subparsers.add_parser(
        "export", help="write snapshots, the journal or a Beancount ledger (streamed)"
    )
    what = export.add_subparsers(dest="export_what", metavar="WHAT", required=True)

    snapshots = what.add_parser("snapshots", help="every stored provider object, as received")
    snapshots.add_argument("--format", choices=["jsonl"], default="jsonl")
    _add_since(snapshots)
    _add_output(snapshots)
    snapshots.set_defaults(handler=export_snapshots)

    journal = what.add_parser("journal", help="one row per posting")
    journal.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    _add_since(journal)
    _add_output(journal)
    journal.set_defaults(handler=export_journal)

    beancount = what.add_parser("beancount", help="a ledger that bean-check accepts")
    _add_output(beancount)
    beancount.set_defaults(handler=export_beancount)

    balances = subparsers.add_parser("balances", help="balance per account and currency")
    balances.add_argument(
        "--at", type=_date, metavar="YYYY-MM-DD", help="count entries up to the end of this UTC day"
    )
    balances.add_argument("--format", choices=["table", "json"], default="table")
    balances.set_defaults(handler=show_balances)


def _add_since(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=_seq, default=0, metavar="SEQ", help="only rows with seq > SEQ"
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", metavar="FILE", help="write FILE atomically instead of stdout")


def _seq(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a sequence number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


# --- handlers


def export_snapshots(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(settings) as store:
        snapshots = store.iter_snapshots(args.since)
        return _export(args, "snapshots", lambda out: write_snapshots_jsonl(snapshots, out))


def export_journal(args: argparse.Namespace, settings: Settings) -> int:
    writer = write_journal_csv if args.format == "csv" else write_journal_jsonl
    newline = "" if args.format == "csv" else None  # the csv module writes its own \r\n
    with _ledger(settings) as store:
        entries = store.iter_journal(args.since)
        return _export(args, "journal", lambda out: writer(entries, out), newline=newline)


def export_beancount(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(settings) as store:
        entries = store.iter_journal()
        return _export(args, "beancount", lambda out: write_beancount(entries, out))


def show_balances(args: argparse.Namespace, settings: Settings) -> int:
    before = end_of_day(args.at) if args.at else None
    with _ledger(settings) as store:
        # ``before`` is exclusive in the fold; the store's ``until`` only narrows the scan
        totals = fold_balances(store.iter_journal(until=before), before=before)
    balances = sorted_balances(totals)
    if args.format == "json":
        text = json.dumps(json_rows(balances), indent=2) + "\n"
    else:
        text = render_table(balances)
    with _stdout_guard():
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


# --- plumbing


def _export(
    args: argparse.Namespace,
    what: str,
    write: Callable[[TextIO], int],
    *,
    newline: str | None = None,
) -> int:
    with atomic_output(args.output, newline=newline) as out:
        rows = write(out)
    log.info("export_written", what=what, rows=rows, output=args.output or "stdout")
    return 0


@contextmanager
def _ledger(settings: Settings) -> Iterator[LedgerStore]:
    # never migrates: reading a ledger out must not change its schema
    store = open_ledger(settings.database_url, settings.precision_table(), auto_upgrade=False)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _stdout_guard() -> Iterator[None]:
    """A closed pipe (``tally export … | head``) ends the export quietly, like other tools."""
    try:
        yield
    except BrokenPipeError:
        # stdout is gone: point it at devnull so the interpreter's final flush cannot fail too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise TallyError("output closed before the export finished") from None


@contextmanager
def atomic_output(path: str | None, *, newline: str | None = None) -> Iterator[TextIO]:
    """Yield stdout, or a temp file in the target's folder that replaces ``path`` on success.

    On any failure the temp file is removed and an existing ``path`` is left untouched. A new
    file gets the usual umask-derived mode; a replaced file keeps its mode.
    """
    if path is None or path == "-":
        with _stdout_guard():
            yield sys.stdout
            sys.stdout.flush()
        return
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise TallyError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise TallyError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; restore at once
        os.umask(umask)
        return 0o666 & ~umask
