"""``tally reconcile [--all]``: run the rules over what changed since the last run (everything
with ``--all``), update the alerts, log and deliver what changed, print one summary line."""

from __future__ import annotations

import argparse
import sys

from ledger.alerts.outbox import Outbox
from ledger.alerts.store import AlertStore
from ledger.storage.open import open_ledger
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.alerts.sinks import LogSink, deliver_inline, deliveries_due, http_sinks, new_http_client
from worker.app.commands import Subparsers, add_format, print_json
from worker.config import Settings
from worker.runtime import reconcile_plans, utc_now


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="check the ledger's amounts and update the alerts",
        description="Run the reconciliation rules over what changed since the last run "
        "(everything with --all), open, update or resolve alerts, deliver the changes, print "
        "one summary.",
    )
    parser.add_argument(
        "--all", action="store_true", help="re-check every object, not only what changed"
    )
    add_format(parser)
    parser.set_defaults(handler=handle, uses=("ledger", "sources", "alerts"), needs_ledger=True)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    store = open_ledger(
        settings.database_url, settings.precision_table(), auto_upgrade=not settings.is_postgres
    )
    try:
        plans = reconcile_plans(settings)
        context = ReconcileContext.from_settings(store, settings, utc_now, plans)
        report = reconcile(context, full=args.all)
        log_sink = LogSink()
        for note in report.notifications:
            log_sink.send(note)
        outbox = Outbox(store.engine)
        with new_http_client() as client:
            sinks = http_sinks(settings, client)
            due = deliveries_due(report.notifications, sinks, outbox, utc_now())
            failed = deliver_inline(outbox, sinks, due, utc_now)
        live = AlertStore(store.engine).list_alerts()
    finally:
        store.close()
    c = report.counts
    if args.format == "json":
        print_json(
            {
                "mode": report.mode,
                "snapshots": c["snapshots"],
                "checks": c["evaluated"],
                "opened": c["open"],
                "updated": c["update"],
                "resolved": c["resolve"],
                "live_alerts": len(live),
                "cursor": report.cursor_to,
                "failed_deliveries": failed,
            }
        )
    else:
        print(
            f"reconcile {report.mode}: snapshots={c['snapshots']} checks={c['evaluated']} "
            f"opened={c['open']} updated={c['update']} resolved={c['resolve']} "
            f"live_alerts={len(live)} cursor={report.cursor_to}"
        )
    if failed:
        print(
            f"tally: {failed} alert deliveries failed; a later reconcile sends them again",
            file=sys.stderr,
        )
    return 0
