"""``tally demo``: both sandboxes on free ports, a full sync and reconciliation, a short report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from ledger.alerts.store import AlertStore
from sandbox.report import report
from worker.app.commands.alerts import render_table
from worker.app.session import worker_session
from worker.config import (
    SANDBOX_API_KEY,
    SANDBOX_EBIORO_PUBLIC_KEY,
    SANDBOX_EBIORO_SECRET_KEY,
    Settings,
    load_settings,
)
from worker.logging import configure_logging
from worker.runtime import Runtime
from worker.sync.once import sync_once, tty_progress

SOURCES = ("aurpay", "ebioro")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo", help="sync local Aurpay and Ebioro sandboxes end to end and print a report"
    )
    parser.add_argument("--orders", type=int, default=300, help="orders in the Aurpay sandbox")
    parser.add_argument("--payments", type=int, default=100, help="payments in the Ebioro sandbox")
    parser.add_argument("--seed", type=int, default=42, help="sandbox seed (same seed, same world)")
    parser.add_argument("--mismatch-rate", type=float, default=0.05, help="planted mismatches")
    parser.add_argument(
        "--database",
        default=None,
        help="database URL for the demo ledger (default: a new SQLite file in a temp directory)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from sandbox.aurpay.model import SandboxConfig
    from sandbox.aurpay.server import start_sandbox as start_aurpay
    from sandbox.ebioro.model import EbioroSandboxConfig
    from sandbox.ebioro.server import start_sandbox as start_ebioro

    workdir = Path(tempfile.mkdtemp(prefix="tally-demo-"))
    database = args.database or f"sqlite:///{workdir / 'demo.db'}"
    with ExitStack() as stack:
        # The report is the demo's output; the structured log (alerts included) goes to a file.
        log_file = stack.enter_context((workdir / "demo.log").open("a", encoding="utf-8"))
        configure_logging(settings.tally_log_level, "json", settings.secret_values(), log_file)
        aurpay = stack.enter_context(
            start_aurpay(
                SandboxConfig(seed=args.seed, orders=args.orders, mismatch_rate=args.mismatch_rate)
            )
        )
        ebioro = stack.enter_context(
            start_ebioro(
                EbioroSandboxConfig(
                    seed=args.seed, payments=args.payments, mismatch_rate=args.mismatch_rate
                )
            )
        )
        print(f"aurpay sandbox: {aurpay.base_url} (seed {args.seed}, {args.orders} orders)")
        print(f"ebioro sandbox: {ebioro.base_url} (seed {args.seed}, {args.payments} payments)")
        print(f"ledger:         {database}")
        print(f"log:            {log_file.name}")
        # The demo never touches a configured ledger or real gateway: only the sandboxes.
        demo_settings = load_settings(
            database_url=database,
            redis_url=None,
            aurpay_base_url=aurpay.base_url,
            aurpay_api_key=SANDBOX_API_KEY,
            aurpay_api_token=None,
            aurpay_api_secret=None,
            ebioro_base_url=ebioro.base_url,
            ebioro_public_key=SANDBOX_EBIORO_PUBLIC_KEY,
            ebioro_secret_key=SANDBOX_EBIORO_SECRET_KEY,
        )
        session = stack.enter_context(worker_session(demo_settings))
        progress = tty_progress()
        result = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=list(SOURCES),
            mode="full",
            timeout=600,
            on_progress=progress,
        )
        if progress:
            print(file=sys.stderr)
        for s in result.summaries:
            print(
                f"sync {s.source}: {s.pages} pages, {s.new_snapshots} new snapshots, "
                f"{s.journal_entries} journal entries, {s.rejected} rejected"
            )
        if not result.ok:
            print(f"tally: {result.failure()}", file=sys.stderr)
            return 1
        print()
        print(report(session.runtime.store, SOURCES, open_alert_table(session.runtime)))
    return 0


def open_alert_table(runtime: Runtime) -> list[str]:
    """The open alerts (sync_once already reconciled), as the lines of `tally alerts`."""
    alerts = AlertStore(runtime.store.engine).list_alerts()
    return render_table(alerts).rstrip().splitlines() if alerts else []
