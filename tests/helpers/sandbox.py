"""Pointing tally at a running Aurpay sandbox (settings in-process, env for subprocesses), running
syncs against it, and picking orders to change."""

from __future__ import annotations

from typing import Any

from sandbox.aurpay import RunningSandbox, World
from sandbox.aurpay.generate import REFUNDABLE_STATUSES
from worker.app.session import WorkerSession
from worker.config import Settings, load_settings
from worker.gateways.aurpay.settings import (
    SANDBOX_API_KEY,
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)
from worker.sync.once import new_run_id, sync_once
from worker.sync.state import RunSummary

# High enough that the limiter never paces a test; the limiter has its own tests.
UNPACED_RPS = 10_000


def sandbox_settings(sandbox: RunningSandbox, database_url: str, **overrides: Any) -> Settings:
    """Settings for a sync of ``sandbox`` into ``database_url`` (callback credentials matching)."""
    values: dict[str, Any] = {
        "aurpay_base_url": sandbox.base_url,
        "aurpay_api_key": SANDBOX_API_KEY,
        "aurpay_callback_token": SANDBOX_CALLBACK_TOKEN,
        "aurpay_callback_secret": SANDBOX_CALLBACK_SECRET,
        "aurpay_requests_per_second": UNPACED_RPS,
        "database_url": database_url,
    }
    return load_settings(**{**values, **overrides})


def sandbox_env(sandbox: RunningSandbox, database_url: str, **overrides: Any) -> dict[str, str]:
    """The same, as environment variables for a ``tally`` subprocess (JSON logs)."""
    values: dict[str, Any] = {
        "AURPAY_BASE_URL": sandbox.base_url,
        "AURPAY_API_KEY": SANDBOX_API_KEY,
        "AURPAY_REQUESTS_PER_SECOND": UNPACED_RPS,
        "DATABASE_URL": database_url,
        "TALLY_LOG_FORMAT": "json",
        # a free port, not the default 8078: a tally someone runs on this machine, or a second
        # suite, must not make ``tally run`` exit early (a test that posts callbacks sets one)
        "TALLY_CALLBACK_PORT": 0,
    }
    values.update({k.upper(): v for k, v in overrides.items()})
    return {k: str(v) for k, v in values.items() if v is not None}


def run_sync(session: WorkerSession, mode: str = "full", timeout: float = 60) -> RunSummary:
    """One sync of every source in ``session`` to completion (what ``tally sync --once`` does)."""
    report = sync_once(
        session.runtime,
        session.actors,
        session.worker,
        sources=sorted(session.runtime.sources),
        mode=mode,
        timeout=timeout,
    )
    assert report.ok, report.failure()
    (summary,) = report.summaries
    return summary


def start_full_scan(session: WorkerSession, source: str = "aurpay") -> str:
    """Enqueue a full scan of every feed and return its run id without waiting (as the
    scheduler does); ``session.worker.join()`` waits for it."""
    run_id = new_run_id(source, "full")
    for feed in session.runtime.sources[source].feeds:
        session.actors.sync_feed.send(source, feed, "full", run_id)
    return run_id


def refundable_orders(world: World) -> list[str]:
    """Ids of the paid, not yet refunded orders, oldest first."""
    junk = {r.record.get("order_id") for r in world.invalid_records() if r.endpoint == "orders"}
    orders = [
        o
        for o in world.truth()["orders"]
        if o.get("status") in REFUNDABLE_STATUSES and o.get("order_id") not in junk
    ]
    return [o["order_id"] for o in sorted(orders, key=lambda o: (o["create_time"], o["order_id"]))]
