"""``tally worker|scheduler|callbacks|run``: the processes of a deployment, or all in one.

Each runs until SIGTERM/SIGINT, then stops cleanly: the worker finishes its in-flight messages
within TALLY_SHUTDOWN_GRACE_SECONDS (unfinished ones return to the queue), the scheduler releases
its lease, the servers close. With TALLY_METRICS_PORT set, each serves /metrics, /healthz, /readyz.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

from worker.alerts.actors import declare_alert_actors
from worker.app.commands import MAX_PORT, Subparsers, int_range
from worker.app.wiring import build_callback_server, build_scheduler
from worker.broker import requeue_from_dead_workers, run_in_process, setup_broker
from worker.config import Settings
from worker.console.serving import console_mounts
from worker.errors import ConfigError
from worker.logging import get_logger
from worker.ops.health import serve_ops
from worker.retention.job import prune_job
from worker.retention.settings import load_retention
from worker.runtime import build_runtime, install
from worker.schedule.scheduler import stop_on_signals
from worker.sync.actors import QUEUES, declare_actors

log = get_logger(__name__)
MAX_THREADS = 256


def register(subparsers: Subparsers) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="consume sync and alert messages (scaled deployment)",
        description="Consume sync and alert messages from Redis until SIGTERM; run as many as "
        "you like (a scaled deployment).",
    )
    worker.add_argument(
        "--threads",
        type=int_range(1, MAX_THREADS),
        default=None,
        help=f"worker threads, 1-{MAX_THREADS} (TALLY_WORKER_THREADS)",
    )
    worker.set_defaults(handler=lambda a, s: serve(s, worker=True, threads=a.threads))

    scheduler = subparsers.add_parser(
        "scheduler",
        help="enqueue periodic syncs (one active copy)",
        description="Enqueue incremental syncs, full scans and reconciles on their intervals, "
        "and recover what a killed process left undone. One copy acts; others wait.",
    )
    scheduler.set_defaults(handler=lambda a, s: serve(s, scheduler=True))

    callbacks = subparsers.add_parser(
        "callbacks",
        help="serve provider callbacks",
        description="Serve the gateways' callbacks and webhooks at /callbacks/<source>; each "
        "verified delivery re-fetches its object.",
    )
    _add_bind(callbacks)
    callbacks.set_defaults(handler=lambda a, s: serve(s, callbacks=True, host=a.host, port=a.port))

    run = subparsers.add_parser(
        "run",
        help="the whole service in one process (embedded defaults)",
        description="Worker, scheduler, callbacks and the console in one process, until "
        "SIGTERM or Ctrl-C (the embedded defaults: SQLite, no Redis).",
    )
    _add_bind(run)
    run.set_defaults(
        handler=lambda a, s: serve(
            s,
            worker=True,
            scheduler=True,
            callbacks=True,
            console=True,
            host=a.host,
            port=a.port,
        )
    )


def _add_bind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (TALLY_CALLBACK_HOST)")
    parser.add_argument(
        "--port",
        type=int_range(0, MAX_PORT),
        default=None,
        help="port, 0-65535, 0 picks a free one (TALLY_CALLBACK_PORT)",
    )


def serve(
    settings: Settings,
    *,
    worker: bool = False,
    scheduler: bool = False,
    callbacks: bool = False,
    console: bool = False,
    threads: int | None = None,
    host: str | None = None,
    port: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    if not worker and not settings.redis_url:
        raise ConfigError(
            "invalid setting REDIS_URL: a separate scheduler or callbacks process needs Redis to "
            "reach the workers; set REDIS_URL, or use `tally run` for the single-process mode"
        )
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(stop)
    runtime = build_runtime(settings)
    install(runtime)
    broker = setup_broker(
        settings, runtime.redis_client, heartbeat_timeout_ms=settings.tally_heartbeat_timeout_ms
    )
    actors = declare_actors(broker)
    alerts = declare_alert_actors(
        broker, delivery_min_backoff_ms=settings.tally_alert_retry_min_backoff_ms
    )
    stops: list[Callable[[], object]] = []  # each started piece's stop, undone in reverse
    try:
        # The scheduler (one per deployment) exports the ledger-state gauges, workers don't.
        sources = sorted(runtime.sources)
        ops = serve_ops(
            settings,
            runtime.store,
            broker,
            sources,
            ledger_gauges=scheduler,
        )
        if ops is not None:
            stops.append(ops.stop)
        if worker:
            pool = run_in_process(broker, threads or settings.tally_worker_threads)
            stops.append(lambda: pool.stop(timeout=settings.tally_shutdown_grace_seconds))
        if callbacks:
            # `tally run` serves the console beside the callbacks, under /console
            mounts = console_mounts(settings, runtime.store) if console else None
            server = build_callback_server(runtime, actors, host, port, mounts)
            server.start()
            stops.append(server.stop)
        sched_thread = None
        if scheduler:
            reconcile_job = (
                settings.tally_reconcile_interval_seconds,
                lambda _key: alerts.reconcile.send(False),
            )
            # Messages of a killed worker go back to their queues within a minute of the
            # heartbeat timeout, not after dramatiq's random maintenance (~15 min idle).
            maintenance_job = (60, lambda _key: requeue_from_dead_workers(broker, QUEUES))
            # bookkeeping past its retention (never the ledger), from the scheduler's process
            prune = prune_job(runtime.store.engine, load_retention(), runtime.now)
            sched = build_scheduler(
                runtime,
                actors,
                {"reconcile": reconcile_job, "requeue": maintenance_job, "prune": prune},
            )
            sched_thread = threading.Thread(
                target=sched.run_forever, args=(stop,), name="scheduler"
            )
            sched_thread.start()
        log.info("tally_started", worker=worker, scheduler=scheduler, callbacks=callbacks)
        stop.wait()
        log.info("tally_stopping")
        if ops is not None:
            ops.mark_stopping()
        if sched_thread is not None:
            sched_thread.join()
    finally:
        for stop_piece in reversed(stops):
            stop_piece()
        install(None)
        runtime.close()
    log.info("tally_stopped")
    return 0
