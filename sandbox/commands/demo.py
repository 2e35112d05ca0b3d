"""``tally demo``: every gateway's sandbox on a free port, a full sync and reconciliation of each
gateway's default source against it, and a short report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledger.alerts.store import AlertStore
from sandbox.aurpay import SandboxConfig
from sandbox.aurpay import start_sandbox as start_aurpay
from sandbox.commands.sandbox import MAX_OBJECTS, share
from sandbox.ebioro import EbioroSandboxConfig
from sandbox.ebioro import start_sandbox as start_ebioro
from sandbox.report import Truth, report, score, scorecard
from worker.accounts import env_prefix
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.app.commands import Subparsers, int_range
from worker.app.commands.alerts import render_table
from worker.app.session import worker_session
from worker.config import Settings, load_settings
from worker.gateways.aurpay.settings import SANDBOX_API_KEY
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY, SANDBOX_SECRET_KEY
from worker.gateways.registry import REGISTRY
from worker.logging import configure_logging
from worker.runtime import Runtime, reconcile_plans, utc_now
from worker.sync.once import sync_once, tty_progress


@dataclass(frozen=True)
class DemoSandbox:
    """How the demo runs one gateway's sandbox and points the gateway's default account at it."""

    start: Callable[[argparse.Namespace], AbstractContextManager[Any]]
    world: Callable[[argparse.Namespace], str]  # what the sandbox holds, for the intro
    account: Callable[[str], dict[str, Any]]  # sandbox URL → the account's settings


SANDBOXES = {  # by gateway name; a gateway without a sandbox is left out of the demo
    "aurpay": DemoSandbox(
        start=lambda a: start_aurpay(
            SandboxConfig(seed=a.seed, orders=a.orders, mismatch_rate=a.mismatch_rate)
        ),
        world=lambda a: f"{a.orders} orders",
        account=lambda url: {
            "base_url": url,
            "api_key": SANDBOX_API_KEY,
            "api_token": None,
            "api_secret": None,
        },
    ),
    "ebioro": DemoSandbox(
        start=lambda a: start_ebioro(
            EbioroSandboxConfig(seed=a.seed, payments=a.payments, mismatch_rate=a.mismatch_rate)
        ),
        world=lambda a: f"{a.payments} payments",
        account=lambda url: {
            "base_url": url,
            "public_key": SANDBOX_PUBLIC_KEY,
            "secret_key": SANDBOX_SECRET_KEY,
        },
    ),
}


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="sync local Aurpay and Ebioro sandboxes end to end and print a report"
    )
    count = int_range(0, MAX_OBJECTS)
    parser.add_argument("--orders", type=count, default=300, help="orders in the Aurpay sandbox")
    parser.add_argument(
        "--payments", type=count, default=100, help="payments in the Ebioro sandbox"
    )
    parser.add_argument("--seed", type=int, default=42, help="sandbox seed (same seed, same world)")
    parser.add_argument("--mismatch-rate", type=share, default=0.05, help="planted mismatches, 0-1")
    parser.add_argument(
        "--database",
        default=None,
        help="database URL for the demo ledger (default: a new SQLite file in a temp directory)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="tally-demo-"))
    database = args.database or f"sqlite:///{workdir / 'demo.db'}"
    with ExitStack() as stack:
        # The report is the demo's output; the structured log (alerts included) goes to a file.
        log_file = stack.enter_context((workdir / "demo.log").open("a", encoding="utf-8"))
        configure_logging(settings.tally_log_level, "json", settings.secret_values(), log_file)
        accounts: dict[str, Any] = {}
        sources = []
        worlds: dict[str, Any] = {}
        for gateway in REGISTRY:
            demo = SANDBOXES.get(gateway.name)
            if demo is None:
                continue
            running = stack.enter_context(demo.start(args))
            print(
                f"{gateway.name + ' sandbox:':<16}{running.base_url} (seed {args.seed}, "
                f"{demo.world(args)})"
            )
            prefix = env_prefix(gateway.name, None)
            accounts |= {prefix + k: v for k, v in demo.account(running.base_url).items()}
            sources.append(gateway.name)
            worlds[gateway.name] = running.world
        print(f"{'ledger:':<16}{database}")
        print(f"{'log:':<16}{log_file.name}")
        # The demo never touches a configured ledger or real gateway: only the sandboxes.
        demo_settings = load_settings(
            database_url=database, redis_url=None, tally_sources=",".join(sources), **accounts
        )
        session = stack.enter_context(worker_session(demo_settings))
        progress = tty_progress()
        result = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=sources,
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
        truths = [truth_of(source, world) for source, world in worlds.items()]
        grace = timedelta(seconds=demo_settings.tally_refund_grace_seconds)
        if any(t.held for t in truths):
            # Some plants show only a grace period after tally first saw them: reconcile once
            # more as of then, as the scheduler would a day later.
            later = utc_now() + grace + timedelta(seconds=1)
            plans = reconcile_plans(demo_settings)
            store = session.runtime.store
            reconcile(ReconcileContext.from_settings(store, demo_settings, lambda: later, plans))
        print()
        print(report(session.runtime.store, sources, open_alert_table(session.runtime)))
        print()
        alerts = AlertStore(session.runtime.store.engine).list_alerts()
        scores = [
            score(t, {(a.rule, a.subject_id) for a in alerts if a.source == t.source})
            for t in truths
        ]
        first = alerts[0].id if alerts else None
        hours = f"{grace.total_seconds() / 3600:g}h"
        print("\n".join(scorecard(scores, hours, first, f"DATABASE_URL={database} ")))
    return 0


def truth_of(source: str, world: Any) -> Truth:
    """A sandbox world's planted set, as the scorecard reads it."""
    return Truth(
        source,
        frozenset(world.expected_mismatches()),
        frozenset(world.held_by_grace()),
        frozenset(world.dust_cases()),
        world.legit_cases(),
    )


def open_alert_table(runtime: Runtime) -> list[str]:
    """The open alerts (sync_once already reconciled), as the lines of `tally alerts`."""
    alerts = AlertStore(runtime.store.engine).list_alerts()
    return render_table(alerts).rstrip().splitlines() if alerts else []
