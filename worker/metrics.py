"""Prometheus metrics: every ``tally_*`` series, the thin functions that record them where the
events happen, an actor middleware, and the ledger-state gauges read at scrape time.

Series live in this process's ``REGISTRY``; ``worker.ops.server`` serves it on /metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from worker.logging import get_logger

log = get_logger(__name__)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

REQUESTS = Counter(
    "tally_source_requests_total",
    "HTTP requests to a payment gateway, by HTTP status ('error': no response).",
    ["source", "endpoint", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "tally_source_request_duration_seconds",
    "Time for one HTTP request to a payment gateway, rate-limit wait included.",
    ["source", "endpoint"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "tally_source_retries_total",
    "In-call retries of a gateway request, by the error that caused them.",
    ["source", "reason"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "tally_source_rate_limited_total",
    "HTTP 429 answers from a payment gateway.",
    ["source", "endpoint"],
    registry=REGISTRY,
)
PAGES = Counter(
    "tally_pages_fetched_total",
    "Feed pages fetched and appended.",
    ["source", "feed"],
    registry=REGISTRY,
)
SNAPSHOTS = Counter(
    "tally_snapshots_appended_total", "New snapshots appended.", ["source"], registry=REGISTRY
)
JOURNAL = Counter(
    "tally_journal_entries_appended_total",
    "Journal transactions appended.",
    ["source"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "tally_records_rejected_total",
    "Records that failed validation when fetched (each fetch counts).",
    ["source"],
    registry=REGISTRY,
)
QUARANTINED = Counter(
    "tally_records_quarantined_total",
    "New quarantine rows (a bad record seen again is not counted again).",
    ["source"],
    registry=REGISTRY,
)
MESSAGES = Counter(
    "tally_messages_total",
    "Messages processed, by outcome: ok, retry (asked for a later retry), error, skipped.",
    ["actor", "queue", "outcome"],
    registry=REGISTRY,
)
ACTOR_SECONDS = Histogram(
    "tally_actor_duration_seconds",
    "Time an actor spent on one message.",
    ["actor", "queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800),
    registry=REGISTRY,
)
IN_PROGRESS = Gauge(
    "tally_messages_in_progress", "Messages being processed now.", ["actor"], registry=REGISTRY
)


# --- recording: one call per event, from where it happens


def request_done(source: str, endpoint: str, status: int | None, seconds: float) -> None:
    REQUESTS.labels(source, endpoint, "error" if status is None else str(status)).inc()
    REQUEST_SECONDS.labels(source, endpoint).observe(seconds)
    if status == 429:
        RATE_LIMITED.labels(source, endpoint).inc()


def retried(source: str, reason: str) -> None:
    RETRIES.labels(source, reason).inc()


def page_fetched(source: str, feed: str) -> None:
    PAGES.labels(source, feed).inc()


def appended(
    source: str, *, snapshots: int, journal_entries: int, rejected: int, quarantined: int
) -> None:
    SNAPSHOTS.labels(source).inc(snapshots)
    JOURNAL.labels(source).inc(journal_entries)
    REJECTED.labels(source).inc(rejected)
    QUARANTINED.labels(source).inc(quarantined)


class ActorMetrics(Middleware):
    """Message outcomes, durations and in-progress counts per actor.

    Ours rather than dramatiq's ``Prometheus`` middleware: that one expects the ``dramatiq``
    launcher (forked exposition server, multiprocess files, a fixed port on 0.0.0.0), while
    tally runs its workers in-process and serves one registry on ``TALLY_METRICS_PORT``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        IN_PROGRESS.labels(message.actor_name).inc()
        with self._lock:
            self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is None:
            outcome = "ok"
        else:
            outcome = "retry" if isinstance(exception, dramatiq.Retry) else "error"
        self._finish(message, outcome)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._finish(message, "skipped")

    def _finish(self, message: Any, outcome: str) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
        MESSAGES.labels(message.actor_name, message.queue_name, outcome).inc()
        if started is not None:  # skips can come before processing ever began
            IN_PROGRESS.labels(message.actor_name).dec()
            seconds = time.perf_counter() - started
            ACTOR_SECONDS.labels(message.actor_name, message.queue_name).observe(seconds)


# --- the ledger's state, read at scrape time


@dataclass(frozen=True)
class FeedState:
    source: str
    feed: str
    high_water: datetime | None  # the newest object seen
    last_full_scan_at: datetime | None


@dataclass(frozen=True)
class LedgerState:
    feeds: Sequence[FeedState]
    last_success: Mapping[str, datetime | None]  # source → its last successful call
    alerts: Mapping[tuple[str, str], int]  # (rule, status) → live alerts
    head_seq: int


def _gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class LedgerStateCollector:
    """Gauges read from the database on each scrape: sync lag, last full scan, open alerts.

    They describe the deployment, not the process, so only one process type (the scheduler)
    exports them. A failed read yields ``tally_ledger_state_up 0`` instead of breaking /metrics.
    """

    def __init__(self, read: Callable[[], LedgerState], clock: Callable[[], datetime]) -> None:
        self._read = read
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = _gauge("tally_ledger_state_up", "1 if this scrape could read the ledger's state.")
        try:
            state = self._read()
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("metrics_ledger_state_failed", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = self._clock()
        lag = _gauge(
            "tally_sync_lag_seconds",
            "Now minus the creation time of the newest object synced.",
            ("source", "feed"),
        )
        full = _gauge(
            "tally_sync_last_full_scan_timestamp_seconds",
            "When the last full scan of a feed finished (Unix time).",
            ("source", "feed"),
        )
        for feed in state.feeds:
            if feed.high_water is not None:
                lag.add_metric([feed.source, feed.feed], (now - feed.high_water).total_seconds())
            if feed.last_full_scan_at is not None:
                full.add_metric([feed.source, feed.feed], feed.last_full_scan_at.timestamp())
        success = _gauge(
            "tally_sync_last_success_timestamp_seconds",
            "When a source last answered a sync call successfully (Unix time).",
            ("source",),
        )
        for source, moment in state.last_success.items():
            if moment is not None:
                success.add_metric([source], moment.timestamp())
        alerts = _gauge(
            "tally_alerts_open", "Alerts not resolved, by rule and status.", ("rule", "status")
        )
        for (rule, status), count in sorted(state.alerts.items()):
            alerts.add_metric([rule, status], count)
        head = _gauge("tally_ledger_head_seq", "Sequence number of the ledger's chain head.")
        head.add_metric([], state.head_seq)
        yield from (lag, full, success, alerts, head)
