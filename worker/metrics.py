"""Prometheus metrics: every ``tally_*`` series, the thin functions that record them where the
events happen, an actor middleware, the ledger-state gauges, and the ops HTTP server.

The server answers ``/metrics``, ``/healthz`` (the process is alive) and ``/readyz`` (what the
readiness callable says). Series live in this process's ``REGISTRY``; nothing listens until a
process starts an ``OpsServer``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

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
from prometheus_client.exposition import choose_encoder

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


# --- the ops HTTP server


class ReadinessReport(Protocol):
    @property
    def ok(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 10

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encode, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encode(self.server.registry), content_type)
        elif path == "/healthz":
            self._json(200, {"status": "ok"})
        elif path == "/readyz":
            self._json(*self.server.readyz())
        else:
            self._json(404, {"error": "not found"})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds are not news."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    readyz: Callable[[], tuple[int, dict[str, Any]]]


class OpsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port; binds on creation."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], ReadinessReport],
        *,
        registry: CollectorRegistry = REGISTRY,
        collector: LedgerStateCollector | None = None,
    ) -> None:
        self._ready = ready
        self._registry = registry
        self._collector = collector
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.registry = registry
        self._httpd.readyz = self._readyz
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _readyz(self) -> tuple[int, dict[str, Any]]:
        if self._stopping.is_set():
            return 503, {"ready": False, "reason": "not ready: shutting down"}
        try:
            report = self._ready()
        except Exception as exc:  # a bug in a check must read as "not ready", not a hang
            log.exception("readiness_check_failed")
            return 503, {
                "ready": False,
                "reason": f"not ready: check failed ({type(exc).__name__})",
            }
        return (200 if report.ok else 503), report.to_json()

    def start(self) -> None:
        if self._collector is not None:
            self._registry.register(self._collector)  # type: ignore[arg-type]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="ops-http", daemon=True
        )
        self._thread.start()
        log.info("ops_listening", url=self.url, paths=["/metrics", "/healthz", "/readyz"])

    def mark_stopping(self) -> None:
        """From now on /readyz says no: load balancers stop sending before the process goes."""
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        if self._collector is not None:
            self._registry.unregister(self._collector)  # type: ignore[arg-type]
            self._collector = None
