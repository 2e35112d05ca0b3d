"""The long-running pieces, wired from settings: scheduler jobs, the callback server, the worker.

The commands in ``worker/app/commands/processes.py`` start these alone (a scaled deployment) or
together (``tally run``). This is the only place that knows which actor each job sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.inbound.replay import replay_cache_for
from worker.inbound.server import CallbackServer
from worker.runtime import Runtime
from worker.schedule.lease import lease_for
from worker.schedule.scheduler import DbTickStore, Scheduler
from worker.sync.actors import Actors

SCHEDULER_LEASE = "scheduler"


def scheduler_jobs(
    rt: Runtime, actors: Actors, extra: dict[str, tuple[int, Callable[[str], Any]]] | None = None
) -> dict[str, tuple[int, Callable[[str], Any]]]:
    """Incremental sync every minute and a full scan daily (both settings), per source and feed.

    The tick key becomes the run id, so a message delivered twice is the same run.
    """

    def scan(mode: str) -> Callable[[str], None]:
        def enqueue(tick_key: str) -> None:
            for name, source in rt.sources.items():
                run_id = f"{name}:{tick_key}"
                rt.state.start_run(run_id, name, mode, rt.now())
                for feed in source.feeds:
                    actors.sync_feed.send(name, feed, mode, run_id)

        return enqueue

    settings = rt.settings
    jobs = {
        "sync_incremental": (settings.sync_incremental_interval_seconds, scan("incremental")),
        "sync_full": (settings.sync_full_scan_interval_seconds, scan("full")),
    }
    jobs.update(extra or {})
    return jobs


def build_scheduler(
    rt: Runtime, actors: Actors, extra: dict[str, tuple[int, Callable[[str], Any]]] | None = None
) -> Scheduler:
    return Scheduler(
        scheduler_jobs(rt, actors, extra),
        lease_for(rt.settings, rt.store.engine, SCHEDULER_LEASE),
        DbTickStore(rt.store.engine),
    )


def build_callback_server(
    rt: Runtime, actors: Actors, host: str | None, port: int | None
) -> CallbackServer:
    def enqueue_refresh(order_id: str) -> None:
        actors.refresh_order.send("aurpay", order_id)

    def enqueue_ebioro_refresh(payment_id: str) -> None:
        actors.fetch_object.send("ebioro", "payment", payment_id, None)

    return CallbackServer(
        rt.settings,
        enqueue_refresh,
        replay_cache_for(rt.settings),
        host,
        port,
        enqueue_ebioro_refresh=enqueue_ebioro_refresh if "ebioro" in rt.sources else None,
    )
