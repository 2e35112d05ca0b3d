"""``tally alerts``: list alerts (table or JSON), ``ack`` or ``resolve`` one with a note."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ledger.alerts.state import ACKNOWLEDGED, OPEN, STATUSES, Alert
from ledger.alerts.store import AlertStore
from ledger.money import fmt
from ledger.storage.open import open_ledger
from worker.app.commands import Subparsers
from worker.config import Settings
from worker.runtime import utc_now

COLUMNS = (
    "id",
    "status",
    "rule",
    "source",
    "subject",
    "check",
    "currency",
    "expected",
    "actual",
    "difference",
    "last_seen",
)


def register(subparsers: Subparsers) -> None:
    alerts = subparsers.add_parser("alerts", help="list alerts; ack or resolve one")
    alerts.add_argument(
        "--status", choices=STATUSES, help="only this status (default: open and acknowledged)"
    )
    alerts.add_argument("--format", choices=["table", "json"], default="table")
    alerts.set_defaults(handler=list_alerts)
    actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION")
    for name, verb, handler in (
        ("ack", "acknowledge: someone is on it", acknowledge),
        ("resolve", "resolve by hand: explained, nothing left to do", resolve),
    ):
        action = actions.add_parser(name, help=verb)
        action.add_argument("id", type=int, help="the alert id")
        action.add_argument(
            "--note", required=True, type=_note, help="who and why, kept in the alert's log"
        )
        action.set_defaults(handler=handler)


def _note(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a note is required: say who and why")
    return text.strip()


@contextmanager
def _alerts(settings: Settings) -> Iterator[AlertStore]:
    store = open_ledger(
        settings.database_url, settings.precision_table(), auto_upgrade=not settings.is_postgres
    )
    try:
        yield AlertStore(store.engine)
    finally:
        store.close()


def list_alerts(args: argparse.Namespace, settings: Settings) -> int:
    statuses = (args.status,) if args.status else (OPEN, ACKNOWLEDGED)
    with _alerts(settings) as alerts:
        found = alerts.list_alerts(statuses)
    if args.format == "json":
        print(json.dumps([a.to_json() for a in found], indent=2, ensure_ascii=False))
    else:
        print(render_table(found))
    return 0


def render_table(alerts: list[Alert]) -> str:
    rows = [COLUMNS] + [
        (
            str(a.id),
            a.status,
            a.rule,
            a.source,
            a.subject_id,
            a.check or "-",
            a.currency or "-",
            fmt(a.expected),
            fmt(a.actual),
            fmt(a.difference),
            a.last_seen_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        )
        for a in alerts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    if not alerts:
        lines.append("(no alerts)")
    return "\n".join(line.rstrip() for line in lines)


def _transition(
    args: argparse.Namespace, settings: Settings, change: Callable[..., Alert], done: str
) -> int:
    with _alerts(settings) as alerts:
        alert = change(alerts, args.id, args.note, utc_now())
    print(f"alert {alert.id} {done} ({alert.rule} {alert.subject_id})")
    return 0


def acknowledge(args: argparse.Namespace, settings: Settings) -> int:
    return _transition(args, settings, AlertStore.acknowledge, "acknowledged")


def resolve(args: argparse.Namespace, settings: Settings) -> int:
    return _transition(args, settings, AlertStore.resolve, "resolved")
