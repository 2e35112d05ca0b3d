"""The prune job: the scheduler runs it every ``TALLY_RETENTION_PRUNE_INTERVAL_SECONDS``.

It deletes bookkeeping rows past their retention (``ledger.storage.retention``), in the
scheduler's own process: a few short batched deletes, no message to a worker. Counted in
``tally_retention_pruned_rows_total{table}``; one info line when it deleted something, debug
otherwise, so an idle deployment stays quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Engine

from ledger.storage.retention import Retention, prune
from worker.logging import get_logger
from worker.metrics import REGISTRY
from worker.retention.settings import RetentionSettings

log = get_logger(__name__)

PRUNED = Counter(
    "tally_retention_pruned_rows",
    "Bookkeeping rows deleted by the prune job, by table (the ledger is never pruned).",
    ["table"],
    registry=REGISTRY,
)
LAST_PRUNE = Gauge(
    "tally_retention_last_prune_timestamp_seconds",
    "When the prune job last finished (Unix time).",
    registry=REGISTRY,
)


def run_prune(engine: Engine, retention: Retention, now: datetime) -> dict[str, int]:
    """Prune once; rows deleted per table."""
    started = time.monotonic()
    deleted = prune(engine, retention, now)
    for table, n in deleted.items():
        PRUNED.labels(table).inc(n)
    LAST_PRUNE.set_to_current_time()
    seconds = round(time.monotonic() - started, 3)
    if any(deleted.values()):
        log.info("retention_pruned", seconds=seconds, **{k: v for k, v in deleted.items() if v})
    else:
        log.debug("retention_nothing_to_prune", seconds=seconds)
    return deleted


def prune_job(
    engine: Engine, settings: RetentionSettings, clock: Callable[[], datetime]
) -> tuple[int, Callable[[str], object]]:
    """The scheduler's ``(interval, run)`` for the prune job."""
    retention = settings.retention()

    def run(_tick_key: str) -> object:
        return run_prune(engine, retention, clock())

    return settings.tally_retention_prune_interval_seconds, run
