"""Prometheus metrics: every ``tally_*`` series, the thin functions that record them where the
events happen, an actor middleware, and the ledger-state gauges read at scrape time.

Series live in this process's ``REGISTRY``; ``worker.ops.server`` serves it on /metrics.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

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
T = TypeVar("T")

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
HTTP_REQUESTS = Counter(
    "tally_http_requests_total",
    "Requests answered by tally's own HTTP servers (callbacks, console, ops), by status.",
    ["server", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "tally_http_request_duration_seconds",
    "Time an app of tally's HTTP servers took to answer (queueing for a thread excluded).",
    ["server"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
CALLBACKS = Counter(
    "tally_callbacks_total",
    "Gateway callbacks received, by outcome: accepted, duplicate, refused (401), rejected "
    "(other 4xx), unavailable (5xx).",
    ["source", "outcome"],
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "tally_queue_wait_seconds",
    "Time a message waited on its queue before a worker began it (from when it was sent, or "
    "from when it was due if it was delayed).",
    ["actor", "queue"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "tally_messages_dead_lettered_total",
    "Messages that failed their last retry and went to the dead-letter queue.",
    ["actor", "queue"],
    registry=REGISTRY,
)
# --- recording: one call per event, from where it happens


def request_done(source: str, endpoint: str, status: int | None, seconds: float) -> None:
    REQUESTS.labels(source, endpoint, "error" if status is None else str(status)).inc()
    REQUEST_SECONDS.labels(source, endpoint).observe(seconds)
    if status == 429:
        RATE_LIMITED.labels(source, endpoint).inc()


def http_answered(server: str, status: int, seconds: float | None = None) -> None:
    HTTP_REQUESTS.labels(server, str(status)).inc()
    if seconds is not None:
        HTTP_SECONDS.labels(server).observe(seconds)


def callback_received(source: str, outcome: str) -> None:
    CALLBACKS.labels(source, outcome).inc()


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
        # A delayed message (a retry's backoff, a scheduled send) waits from when it was due.
        due_ms = max(message.message_timestamp, message.options.get("eta") or 0)
        waited = max(0.0, time.time() - due_ms / 1000)
        QUEUE_WAIT.labels(message.actor_name, message.queue_name).observe(waited)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        DEAD_LETTERED.labels(message.actor_name, message.queue_name).inc()

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
    oldest_open: Mapping[str, datetime] = field(default_factory=dict)  # rule → first seen
    follow_ups_pending: Mapping[str, int] = field(default_factory=dict)  # source → recovery's


@dataclass(frozen=True)
class QueueState:
    queue: str
    pending: int  # waiting, delayed or being processed
    dead_letters: int
    oldest_at: datetime | None  # when the oldest waiting message was sent; None: none waiting


def _gauge(
    name: str,
    doc: str,
    labels: Sequence[str] = (),
    rows: Iterable[tuple[Sequence[str], float]] = (),
) -> GaugeMetricFamily:
    """A gauge family with one sample per (label values, value) row."""
    gauge = GaugeMetricFamily(name, doc, labels=list(labels))
    for key, value in rows:
        gauge.add_metric(list(key), value)
    return gauge


def _read_or_down(name: str, doc: str, read: Callable[[], T]) -> tuple[GaugeMetricFamily, T | None]:
    """``read()``, with the ``<name>`` gauge saying whether it worked: a scrape must not fail
    because the database or the broker is down."""
    try:
        value = read()
    except Exception as exc:
        log.warning("metrics_read_failed", metric=name, error=type(exc).__name__)
        return _gauge(name, doc, rows=[((), 0)]), None
    return _gauge(name, doc, rows=[((), 1)]), value


class ChainVerifyCollector:
    """The last end-to-end verification of the hash chain, exported only by the process that
    runs it (the scheduler) and only once it ran: a worker's default 0 would read as broken."""

    def __init__(self) -> None:
        self._last: tuple[bool, int, datetime] | None = None

    def record(self, ok: bool, rows: int, at: datetime) -> None:
        self._last = (ok, rows, at)

    def collect(self) -> Iterator[Metric]:
        if self._last is None:
            return
        ok, rows, at = self._last
        yield _gauge(
            "tally_chain_verify_ok",
            "1 if the last verification of the whole hash chain passed, 0 if it found a break.",
            rows=[((), 1 if ok else 0)],
        )
        yield _gauge(
            "tally_chain_verify_last_run_timestamp_seconds",
            "When the hash chain was last verified end to end (Unix time).",
            rows=[((), at.timestamp())],
        )
        yield _gauge(
            "tally_chain_verify_rows_checked",
            "Rows (snapshots and journal entries) the last chain verification checked.",
            rows=[((), rows)],
        )


class LedgerStateCollector:
    """Gauges read from the database on each scrape: sync lag and age, open alerts by rule and
    age, recovery's backlog, and the broker's queues.

    They describe the deployment, not the process, so only one process type (the scheduler)
    exports them. A failed read yields ``tally_ledger_state_up 0`` (or ``tally_queues_up 0``)
    instead of breaking /metrics.
    """

    def __init__(
        self,
        read: Callable[[], LedgerState],
        clock: Callable[[], datetime],
        *,
        sources: Sequence[str] = (),
        intervals: Mapping[str, int] | None = None,
        queues: Callable[[], Sequence[QueueState]] | None = None,
    ) -> None:
        self._read = read
        self._clock = clock
        self._sources = tuple(sources)
        self._intervals = dict(intervals or {})
        self._queues = queues

    def collect(self) -> Iterator[Metric]:
        yield from self._settings()
        if self._queues is not None:
            up, queues = _read_or_down(
                "tally_queues_up", "1 if this scrape could read the broker's queues.", self._queues
            )
            yield up
            if queues is not None:
                yield from self._queue_gauges(queues, self._clock())
        up, state = _read_or_down(
            "tally_ledger_state_up", "1 if this scrape could read the ledger's state.", self._read
        )
        yield up
        if state is not None:
            yield from self._ledger(state, self._clock())

    def _settings(self) -> Iterator[Metric]:
        yield _gauge(
            "tally_source_configured",
            "1 for every source this deployment syncs.",
            ("source",),
            (((source,), 1) for source in self._sources),
        )
        yield _gauge(
            "tally_sync_interval_seconds",
            "How often the scheduler starts a sync, by mode (incremental, full).",
            ("mode",),
            (((mode,), seconds) for mode, seconds in sorted(self._intervals.items())),
        )

    @staticmethod
    def _queue_gauges(queues: Sequence[QueueState], now: datetime) -> Iterator[Metric]:
        yield _gauge(
            "tally_queue_messages_pending",
            "Messages on a queue not yet done: waiting, delayed or being processed.",
            ("queue",),
            (((q.queue,), q.pending) for q in queues),
        )
        yield _gauge(
            "tally_queue_dead_letters",
            "Messages in a queue's dead-letter queue (out of retries, kept for inspection).",
            ("queue",),
            (((q.queue,), q.dead_letters) for q in queues),
        )
        yield _gauge(
            "tally_queue_oldest_message_age_seconds",
            "How long the oldest message waiting on a queue has waited (0: none waiting).",
            ("queue",),
            (((q.queue,), _age(now, q.oldest_at)) for q in queues),
        )

    @staticmethod
    def _ledger(state: LedgerState, now: datetime) -> Iterator[Metric]:
        yield _gauge(
            "tally_sync_lag_seconds",
            "Now minus the creation time of the newest object synced.",
            ("source", "feed"),
            (
                ((f.source, f.feed), (now - f.high_water).total_seconds())
                for f in state.feeds
                if f.high_water is not None
            ),
        )
        yield _gauge(
            "tally_sync_last_full_scan_timestamp_seconds",
            "When the last full scan of a feed finished (Unix time).",
            ("source", "feed"),
            (
                ((f.source, f.feed), f.last_full_scan_at.timestamp())
                for f in state.feeds
                if f.last_full_scan_at is not None
            ),
        )
        yield _gauge(
            "tally_sync_last_success_timestamp_seconds",
            "When a source's last sync finished (Unix time).",
            ("source",),
            (((s,), at.timestamp()) for s, at in state.last_success.items() if at is not None),
        )
        by_status: dict[str, collections.Counter[str]] = {
            "open": collections.Counter(),
            "acknowledged": collections.Counter(),
        }
        for (rule, status), count in state.alerts.items():
            by_status.setdefault(status, collections.Counter())[rule] += count
        yield _gauge(
            "tally_alerts_open",
            "Alerts open and not acknowledged by anyone, by rule.",
            ("rule",),
            (((rule,), n) for rule, n in sorted(by_status["open"].items())),
        )
        yield _gauge(
            "tally_alerts_acknowledged",
            "Alerts acknowledged but not yet resolved, by rule.",
            ("rule",),
            (((rule,), n) for rule, n in sorted(by_status["acknowledged"].items())),
        )
        yield _gauge(
            "tally_alerts_oldest_open_age_seconds",
            "Age of the oldest open (unacknowledged) alert, by rule.",
            ("rule",),
            (((rule,), _age(now, at)) for rule, at in sorted(state.oldest_open.items())),
        )
        yield _gauge(
            "tally_recovery_follow_ups_pending",
            "Follow-up fetches recovery found the ledger still lacks, by source.",
            ("source",),
            (((s,), n) for s, n in sorted(state.follow_ups_pending.items())),
        )
        yield _gauge(
            "tally_ledger_head_seq",
            "Sequence number of the ledger's chain head.",
            rows=[((), state.head_seq)],
        )


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0
