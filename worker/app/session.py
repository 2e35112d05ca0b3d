"""A worker session in this process: broker, runtime, worker threads, torn down in order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dramatiq

from worker.alerts.actors import AlertActors, declare_alert_actors
from worker.broker import InProcessWorker, run_in_process, setup_broker
from worker.config import Settings
from worker.runtime import Runtime, build_runtime, install
from worker.sync.actors import Actors, declare_actors

SESSION_WAKE_MS = 100


@dataclass
class WorkerSession:
    broker: dramatiq.Broker
    runtime: Runtime
    actors: Actors
    alerts: AlertActors
    worker: InProcessWorker


@contextmanager
def worker_session(
    settings: Settings, *, threads: int | None = None, namespace: str | None = None
) -> Iterator[WorkerSession]:
    runtime = build_runtime(settings)
    install(runtime)
    try:
        broker = setup_broker(
            settings,
            runtime.redis_client,
            namespace=namespace,
            heartbeat_timeout_ms=settings.tally_heartbeat_timeout_ms,
        )
        actors = declare_actors(broker)
        alerts = declare_alert_actors(
            broker, delivery_min_backoff_ms=settings.tally_alert_retry_min_backoff_ms
        )
        # A session is short-lived (sync --once, demo): idle threads wake every 100 ms so the
        # final stop takes a fraction of a second instead of ~2 s (workers, then consumers).
        worker = run_in_process(
            broker, threads or settings.tally_worker_threads, worker_timeout_ms=SESSION_WAKE_MS
        )
        try:
            yield WorkerSession(broker, runtime, actors, alerts, worker)
        finally:
            worker.stop()
    finally:
        install(None)
        runtime.close()
