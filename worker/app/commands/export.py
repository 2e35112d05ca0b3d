"""``tally export snapshots|journal|beancount|quickbooks|xero`` and ``tally balances``.

Every export streams from the store to stdout or, with ``--output``, to a temporary file beside
the target that replaces it only once complete, so a reader never sees half an export.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TextIO

import structlog

from ledger.exports.beancount import write_beancount
from ledger.exports.gl import GlSummary
from ledger.exports.quickbooks import DATE_FORMATS, write_quickbooks
from ledger.exports.writers import write_journal_csv, write_journal_jsonl, write_snapshots_jsonl
from ledger.exports.xero import write_xero_file, xero_files
from ledger.journal.balances import (
    end_of_day,
    fold_balances,
    json_rows,
    render_table,
    sorted_balances,
)
from ledger.model import JournalEntry
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from ledger.timeparse import as_utc
from worker.app.commands import Subparsers
from worker.app.export_settings import load_export_settings
from worker.config import Settings
from worker.errors import TallyError

log = structlog.get_logger(__name__)
READS = ("ledger",)  # the settings groups these commands use (worker/config.py GROUPS)


def register(subparsers: Subparsers) -> None:
    export = subparsers.add_parser(
        "export",
        help="write snapshots, the journal, a Beancount ledger or QuickBooks/Xero journals",
    )
    what = export.add_subparsers(dest="export_what", metavar="WHAT", required=True)

    snapshots = what.add_parser("snapshots", help="every stored provider object, as received")
    snapshots.add_argument("--format", choices=["jsonl"], default="jsonl")
    _add_since(snapshots)
    _add_output(snapshots)
    snapshots.set_defaults(handler=export_snapshots, uses=READS, needs_ledger=True)

    journal = what.add_parser("journal", help="one row per posting")
    journal.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    _add_since(journal)
    _add_output(journal)
    journal.set_defaults(handler=export_journal, uses=READS, needs_ledger=True)

    beancount = what.add_parser("beancount", help="a ledger that bean-check accepts")
    beancount.add_argument(
        "--since",
        type=_date,
        metavar="YYYY-MM-DD",
        help="start at this date: earlier entries become one opening-balances entry",
    )
    _add_output(beancount)
    beancount.set_defaults(handler=export_beancount, uses=READS, needs_ledger=True)

    quickbooks = what.add_parser(
        "quickbooks", help="QuickBooks Online journal-entry import CSV, in the reporting currency"
    )
    quickbooks.add_argument("--date-format", choices=sorted(DATE_FORMATS), default="MM/DD/YYYY")
    _add_strict(quickbooks)
    _add_output(quickbooks)
    quickbooks.set_defaults(handler=export_quickbooks, uses=READS, needs_ledger=True)

    xero = what.add_parser(
        "xero", help="Xero manual-journal import CSVs (300 lines each), in the reporting currency"
    )
    _add_strict(xero)
    xero.add_argument(
        "--output",
        metavar="DIR",
        required=True,
        help="directory for xero-manual-journals-001.csv, -002.csv, … (replaced together)",
    )
    xero.set_defaults(handler=export_xero, uses=READS, needs_ledger=True)

    balances = subparsers.add_parser("balances", help="balance per account and currency")
    balances.add_argument(
        "--at",
        type=_date,
        metavar="YYYY-MM-DD",
        help="count entries whose effective date is up to the end of this UTC day",
    )
    balances.add_argument(
        "--as-of",
        type=_moment,
        metavar="TIME",
        help="what the ledger said at this recorded time (ISO-8601; a date means its end, UTC)",
    )
    balances.add_argument("--format", choices=["table", "json"], default="table")
    balances.set_defaults(handler=show_balances, uses=READS, needs_ledger=True)


def _add_since(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=_seq, default=0, metavar="SEQ", help="only rows with seq > SEQ"
    )


def _add_strict(parser: argparse.ArgumentParser) -> None:
    """``--strict`` and the period (effective dates, both days included): import a closed
    month at a time; a later correction of it posts in the open period."""
    parser.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="from this date")
    parser.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="through this date")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (writing nothing) when an entry has no value in the reporting currency",
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


def _moment(text: str) -> datetime:
    """An ISO-8601 time (naive = UTC), or a date meaning the end of that UTC day."""
    try:
        if len(text.strip()) == 10:
            return end_of_day(date.fromisoformat(text.strip())) - timedelta(microseconds=1)
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (ISO-8601): {text!r}") from None


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
        closed = [close.through for close in store.periods()]
        currency = settings.tally_reporting_currency
        return _export(
            args,
            "beancount",
            lambda out: write_beancount(
                store.iter_journal,  # read twice: balances first, then the entries
                out,
                operating_currency=currency,
                since=args.since,
                closed_through=closed,
            ),
        )


def export_quickbooks(args: argparse.Namespace, settings: Settings) -> int:
    accounts = load_export_settings().quickbooks()
    currency = settings.tally_reporting_currency

    def write(out: TextIO) -> int:
        summary = write_quickbooks(
            entries, out, accounts=accounts, currency=currency, date_format=args.date_format
        )
        return _summarised(summary, args.strict)

    with _ledger(settings) as store:
        entries = _in_period(store.iter_journal(), args.since, args.until)
        return _export(args, "quickbooks", write, newline="")


def export_xero(args: argparse.Namespace, settings: Settings) -> int:
    """Every file is written beside its target first and all replace theirs only once the
    whole export succeeded; numbered files of an earlier, longer export are removed."""
    export_settings = load_export_settings()
    accounts, tax_rate = export_settings.xero(), export_settings.tally_xero_tax_rate
    directory = Path(args.output)
    if not directory.is_dir():
        raise TallyError(f"--output must be an existing directory: {args.output}")
    summary = GlSummary(settings.tally_reporting_currency)
    staged: list[tuple[str, Path]] = []
    try:
        with _ledger(settings) as store:
            entries = _in_period(store.iter_journal(), args.since, args.until)
            parts = xero_files(entries, summary, accounts=accounts, tax_rate=tax_rate)
            for number, rows in enumerate(parts, start=1):
                target = directory / f"{XERO_FILE}-{number:03d}.csv"
                staged.append((_staged(target, partial(write_xero_file, rows)), target))
        _summarised(summary, args.strict)
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    kept = {target.name for _, target in staged}
    for stale in directory.glob(f"{XERO_FILE}-[0-9][0-9][0-9].csv"):
        if stale.name not in kept:
            stale.unlink()
    log.info("export_written", what="xero", rows=summary.lines, files=len(staged))
    return 0


XERO_FILE = "xero-manual-journals"


def _staged(target: Path, write: Callable[[TextIO], int]) -> str:
    """Write a temp file beside ``target`` (not yet replacing it); return its path."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise TallyError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _mode_for(target))
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _in_period(
    entries: Iterable[JournalEntry], since: date | None, until: date | None
) -> Iterator[JournalEntry]:
    for entry in entries:
        day = as_utc(entry.date).date()
        if (since is None or day >= since) and (until is None or day <= until):
            yield entry


def _summarised(summary: GlSummary, strict: bool) -> int:
    """Say what was skipped (one line on stderr), or refuse it with ``--strict``."""
    note = summary.note()
    if note and strict:
        raise TallyError(f"{note} (--strict)")
    if note:
        sys.stderr.write(f"tally: {note}\n")
    return summary.lines


def show_balances(args: argparse.Namespace, settings: Settings) -> int:
    before = end_of_day(args.at) if args.at else None
    with _ledger(settings) as store:
        # ``before`` is exclusive in the fold; the store's ``until`` only narrows the scan
        entries = store.iter_journal(until=before, recorded_by=args.as_of)
        totals = fold_balances(entries, before=before)
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
    """A closed pipe (``tally export … | head``) ends the export quietly, like other tools: the
    CLI turns the BrokenPipeError into a silent exit (141, as a shell reports SIGPIPE)."""
    yield


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
