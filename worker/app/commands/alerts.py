"""``tally alerts``: list (filtered, or grouped by subject), ``show`` one in full, ``ack`` or
``resolve`` several at once with a note and a resolution."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from ledger.alerts.resolution import Resolution
from ledger.alerts.state import ACKNOWLEDGED, CORRECTED, EXPLAINED, OPEN, STATUSES, Alert
from ledger.alerts.store import AlertStore, Filter
from ledger.model import JournalEntry
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from worker.alerts.adjust import current_author, write_off
from worker.alerts.settings import known_rules
from worker.alerts.views import render_grouped, render_show, render_table
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.runtime import utc_now

__all__ = ["register", "render_table"]
AGO = re.compile(r"^(\d+)([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


READS = ("ledger", "alerts")  # the settings groups these commands use (worker/config.py)


def register(subparsers: Subparsers) -> None:
    alerts = subparsers.add_parser(
        "alerts", help="list alerts (filtered or grouped); show one; ack or resolve several"
    )
    alerts.add_argument(
        "--status", choices=STATUSES, help="only this status (default: open and acknowledged)"
    )
    alerts.add_argument("--rule", action="append", default=[], help="only this rule (repeatable)")
    alerts.add_argument(
        "--source", action="append", default=[], help="only this source (repeatable)"
    )
    alerts.add_argument(
        "--subject", action="append", default=[], help="only this subject id (repeatable)"
    )
    alerts.add_argument(
        "--since",
        type=_since,
        help="only alerts seen since: an ISO date or time (UTC unless given), or 30m, 6h, 2d ago",
    )
    alerts.add_argument("--group", choices=["subject"], help="group the table by subject")
    alerts.add_argument("--format", choices=["table", "json"], default="table")
    alerts.set_defaults(handler=list_alerts, uses=READS, needs_ledger=True)
    actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION")
    show = actions.add_parser("show", help="one alert: evidence, postings, full history")
    show.add_argument("id", type=int, help="the alert id")
    show.add_argument("--format", choices=["text", "json"], default="text")
    show.set_defaults(handler=show_alert, uses=READS, needs_ledger=True)
    ack = actions.add_parser("ack", help="acknowledge: someone is on it")
    resolve = actions.add_parser("resolve", help="resolve by hand, saying how")
    for action, handler in ((ack, acknowledge), (resolve, resolve_alerts)):
        action.add_argument("ids", type=int, nargs="+", metavar="ID", help="alert ids")
        action.add_argument(
            "--note", required=True, type=_note, help="who and why, kept in the alert's log"
        )
        action.set_defaults(handler=handler, uses=READS, needs_ledger=True)
    how = resolve.add_mutually_exclusive_group()
    how.add_argument(
        "--corrected",
        action="store_true",
        help="the gateway corrected the data (its correction clears the suspense)",
    )
    how.add_argument(
        "--write-off",
        metavar="ACCOUNT",
        help="write the difference off to ACCOUNT (an adjusting entry)",
    )
    how.add_argument(
        "--explained", action="store_true", help="explained, nothing to post (the default)"
    )


def _note(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a note is required: say who and why")
    return text.strip()


def _since(text: str) -> datetime:
    """An ISO-8601 date or time (naive = UTC), or a duration ago (``30m``, ``6h``, ``2d``)."""
    ago = AGO.match(text.strip())
    if ago:
        return utc_now() - timedelta(**{UNITS[ago[2]]: int(ago[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or time, nor a duration such as 6h or 2d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def _ledger(settings: Settings) -> Iterator[LedgerStore]:
    store = open_ledger(
        settings.database_url, settings.precision_table(), auto_upgrade=not settings.is_postgres
    )
    try:
        yield store
    finally:
        store.close()


def list_alerts(args: argparse.Namespace, settings: Settings) -> int:
    where = Filter(
        statuses=(args.status,) if args.status else (OPEN, ACKNOWLEDGED),
        rules=args.rule,
        sources=args.source,
        subjects=args.subject,
        since=args.since,
    )
    with _ledger(settings) as store:
        found = AlertStore(store.engine).list_alerts(where=where)
    if args.format == "json":
        print(json.dumps([a.to_json() for a in found], indent=2, ensure_ascii=False))
    elif args.group == "subject":
        print(render_grouped(found))
    else:
        print(render_table(found))
    return 0


def show_alert(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(settings) as store:
        alerts = AlertStore(store.engine)
        alert = alerts.get(args.id)
        history = alerts.history(args.id)
        postings = _suspense_entry(store, alert)
    if args.format == "json":
        body = alert.to_json() | {
            "history": [
                {"revision": e.revision, "kind": e.kind, "at": e.at.isoformat(), "note": e.note}
                for e in history
            ]
        }
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    source = settings.sources.get(alert.source)
    gateway = source.gateway.name if source else alert.source
    rule = known_rules().get(f"{gateway}.{alert.rule}")
    print(render_show(alert, history, rule, postings))
    return 0


def _suspense_entry(store: LedgerStore, alert: Alert) -> list[JournalEntry]:
    """The journal entry holding the alert's difference in suspense (read by its seq)."""
    seq = alert.suspense_journal_seq
    if seq is None:
        return []
    entry = next(store.iter_journal(seq - 1, batch=1), None)
    return [entry] if entry is not None and entry.seq == seq else []


def acknowledge(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(settings) as store:
        done = AlertStore(store.engine).acknowledge_many(args.ids, args.note, utc_now())
    for alert in done:
        print(f"alert {alert.id} acknowledged ({alert.rule} {alert.subject_id})")
    return 0


def resolve_alerts(args: argparse.Namespace, settings: Settings) -> int:
    if args.write_off is not None:
        how = Resolution.parse(["write-off", args.write_off])
    else:
        how = Resolution(CORRECTED if args.corrected else EXPLAINED)
    now = utc_now()
    with _ledger(settings) as store:
        done = AlertStore(store.engine).resolve_many(args.ids, args.note, now, how)
        posted = {
            alert.id: write_off(store, alert, args.write_off, args.note, current_author(), now)
            for alert in done
            if args.write_off is not None
        }
    for alert in done:
        print(f"alert {alert.id} resolved as {how.label} ({alert.rule} {alert.subject_id})")
        if posted.get(alert.id):
            print(f"  adjusting entry {posted[alert.id]}: suspense moved to {args.write_off}")
    return 0
