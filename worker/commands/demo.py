"""``tally demo``: sandbox on a free port, a full sync and reconciliation, then a short report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ledger.alert_store import AlertStore
from worker.commands.alerts import render_table
from worker.config import SANDBOX_API_KEY, Settings, load_settings
from worker.demo import report
from worker.logging import configure_logging
from worker.runner import sync_once, tty_progress
from worker.runtime import Runtime
from worker.session import worker_session


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo", help="sync a local sandbox end to end and print a report"
    )
    parser.add_argument("--orders", type=int, default=300, help="orders in the sandbox world")
    parser.add_argument("--seed", type=int, default=42, help="sandbox seed (same seed, same world)")
    parser.add_argument(
        "--mismatch-rate", type=float, default=0.05, help="share of planted mismatches"
    )
    parser.add_argument(
        "--database",
        default=None,
        help="database URL for the demo ledger (default: a new SQLite file in a temp directory)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from worker.providers.aurpay.sandbox.model import SandboxConfig
    from worker.providers.aurpay.sandbox.server import start_sandbox

    workdir = Path(tempfile.mkdtemp(prefix="tally-demo-"))
    database = args.database or f"sqlite:///{workdir / 'demo.db'}"
    # The report is the demo's output; the structured log (alerts included) goes to a file.
    log_file = (workdir / "demo.log").open("a", encoding="utf-8")
    configure_logging(settings.tally_log_level, "json", settings.secret_values(), stream=log_file)
    config = SandboxConfig(seed=args.seed, orders=args.orders, mismatch_rate=args.mismatch_rate)
    with start_sandbox(config) as sandbox:
        print(f"sandbox: {sandbox.base_url} (seed {args.seed}, {args.orders} orders)")
        print(f"ledger:  {database}")
        print(f"log:     {log_file.name}")
        # The demo never touches a configured ledger or real gateway: only the sandbox.
        demo_settings = load_settings(
            database_url=database,
            redis_url=None,
            aurpay_base_url=sandbox.base_url,
            aurpay_api_key=SANDBOX_API_KEY,
            aurpay_api_token=None,
            aurpay_api_secret=None,
        )
        with worker_session(demo_settings) as session:
            progress = tty_progress()
            result = sync_once(
                session.runtime,
                session.actors,
                session.worker,
                sources=["aurpay"],
                mode="full",
                timeout=600,
                on_progress=progress,
            )
            if progress:
                print(file=sys.stderr)
            for s in result.summaries:
                print(
                    f"sync: {s.pages} pages, {s.new_snapshots} new snapshots, "
                    f"{s.journal_entries} journal entries, {s.rejected} rejected"
                )
            if not result.ok:
                print(f"tally: {result.failure()}", file=sys.stderr)
                return 1
            print()
            print(report(session.runtime.store, ["aurpay"], open_alert_table(session.runtime)))
    return 0


def open_alert_table(runtime: Runtime) -> list[str]:
    """The open alerts (sync_once already reconciled), as the lines of `tally alerts`."""
    alerts = AlertStore(runtime.store.engine).list_alerts()
    return render_table(alerts).rstrip().splitlines() if alerts else []
