"""The long-running pieces, wired from settings: scheduler jobs, the callback server, the worker.

The commands in ``worker/app/commands/processes.py`` start these alone (a scaled deployment) or
together (``tally run``). This is the only place that knows which actor each job sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from worker.broker import in_flight
from worker.edge import WSGIApp
from worker.gateways.contract import FollowUp
from worker.inbound.replay import replay_cache_for
from worker.inbound.server import CallbackServer
from worker.runtime import Runtime
from worker.schedule.lease import lease_for
from worker.schedule.scheduler import DbTickStore, Scheduler, TickStore, claimed_this_tick
from worker.sync.actors import Actors
from worker.sync.recovery import Recovery

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
                actors.start_scan(rt.state, source, mode, f"{name}:{tick_key}", rt.now())

        return enqueue

    settings = rt.settings
    jobs = {
        "sync_incremental": (settings.sync_incremental_interval_seconds, scan("incremental")),
        "sync_full": (settings.sync_full_scan_interval_seconds, scan("full")),
    }
    jobs.update(extra or {})
    return jobs


def build_recovery(rt: Runtime, actors: Actors, ticks: TickStore) -> Recovery:
    """Recovery over the actors' broker; a full scan it starts waits for this period's tick."""
    broker = actors.sync_feed.broker
    interval = rt.settings.sync_full_scan_interval_seconds
    return Recovery(
        rt,
        actors,
        in_flight=lambda queue: in_flight(broker, queue),
        full_tick_fired=lambda now: claimed_this_tick(ticks, "sync_full", interval, now),
    )


def build_scheduler(
    rt: Runtime, actors: Actors, extra: dict[str, tuple[int, Callable[[str], Any]]] | None = None
) -> Scheduler:
    """The scheduler, with recovery on taking the lease and then at every incremental tick."""
    ticks = DbTickStore(rt.store.engine)
    recovery = build_recovery(rt, actors, ticks)
    recovery.started(rt.now())  # the backlog is unknown until the first pass
    return Scheduler(
        scheduler_jobs(rt, actors, extra),
        lease_for(rt.settings, rt.redis_client, rt.store.engine, SCHEDULER_LEASE),
        ticks,
        recover=recovery.run,
        recover_seconds=rt.settings.sync_incremental_interval_seconds,
    )


def build_callback_server(
    rt: Runtime,
    actors: Actors,
    host: str | None,
    port: int | None,
    mounts: Mapping[str, WSGIApp] | None = None,
) -> CallbackServer:
    """The callback routes of the configured sources; each delivery re-fetches its object.
    ``mounts`` serves other apps (the console) on the same server by path prefix."""

    def enqueue(source: str, refetch: FollowUp) -> None:
        actors.fetch_object.send(source, refetch.kind, refetch.external_id, None)

    return CallbackServer(
        rt.settings,
        enqueue,
        replay_cache_for(rt.settings, rt.redis_client),
        host,
        port,
        mounts=mounts,
    )
