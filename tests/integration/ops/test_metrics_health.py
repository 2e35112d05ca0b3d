"""Metrics, readiness and status as an operator meets them: the counters a real sync moves,
/metrics /healthz /readyz over real HTTP, and ``tally health`` / ``tally status`` on a ledger."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.alerts.store import AlertStore
from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.store import LedgerStore
from sandbox.aurpay import RunningSandbox
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.cli import main
from worker.app.session import worker_session
from worker.broker import setup_broker
from worker.config import load_settings
from worker.errors import ConfigError
from worker.gateways.aurpay.settings import SANDBOX_API_KEY
from worker.metrics import REGISTRY
from worker.ops.health import readiness, serve_ops
from worker.redis_client import connect_redis
from worker.sync.state import RunState
from worker.sync.status import utc_now

SandboxFactory = Callable[..., RunningSandbox]
ORDERS, TXS = "/api/v2/order/", "/api/v2/tx"


def sample(name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_sync_moves_the_request_retry_page_append_and_actor_counters(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(
        seed=41, orders=80, rate_429=0.3, rate_invalid_record=0.05, retry_after_seconds=0
    )
    watched = {
        "ok_orders": ("tally_source_requests_total", {"endpoint": ORDERS, "status": "200"}),
        "ok_txs": ("tally_source_requests_total", {"endpoint": TXS, "status": "200"}),
        "429s": ("tally_source_requests_total", {"status": "429"}),  # every endpoint
        "limited": ("tally_source_rate_limited_total", {}),
        "retries": ("tally_source_retries_total", {"reason": "RateLimited"}),
        "pages_orders": ("tally_pages_fetched_total", {"feed": "orders"}),
        "pages_txs": ("tally_pages_fetched_total", {"feed": "transactions"}),
        "snapshots": ("tally_snapshots_appended_total", {}),
        "journal": ("tally_journal_entries_appended_total", {}),
        "rejected": ("tally_records_rejected_total", {}),
        "quarantined": ("tally_records_quarantined_total", {}),
    }

    def read() -> Counter[str]:
        return Counter(
            {k: sample(name, source="aurpay", **labels) for k, (name, labels) in watched.items()}
        )

    def actor(name: str, suffix: str, **labels: str) -> float:
        return sample(f"tally_{name}{suffix}", actor="sync_page", queue="tally-sync", **labels)

    before, page_msgs = read(), actor("messages", "_total", outcome="ok")
    page_timings = actor("actor_duration_seconds", "_count")
    with worker_session(sandbox_settings(sandbox, sqlite_url, aurpay_page_size=20)) as session:
        summary = run_sync(session)
        counts = session.runtime.store.counts()
    moved = read()
    moved.subtract(before)

    assert moved["pages_orders"] + moved["pages_txs"] == summary.pages
    assert moved["ok_orders"] == moved["pages_orders"] and moved["ok_txs"] == moved["pages_txs"]
    assert moved["snapshots"] == counts["snapshots"] > 0  # a new ledger: all appended here
    assert moved["journal"] == counts["journal_entries"] > 0
    assert moved["rejected"] == summary.rejected == len(sandbox.world.invalid_records()) > 0
    assert moved["quarantined"] == counts["quarantined"]
    assert moved["429s"] > 0 and moved["limited"] == moved["429s"]
    assert moved["retries"] == moved["429s"]  # each 429 was retried within the call
    assert actor("messages", "_total", outcome="ok") - page_msgs == summary.pages - 2
    assert actor("actor_duration_seconds", "_count") - page_timings == summary.pages - 2
    assert sample("tally_messages_in_progress", actor="sync_page") == 0


def test_the_ops_server_serves_metrics_health_and_readiness(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=42, orders=60)
    port = free_port()
    settings = sandbox_settings(sandbox, sqlite_url, tally_metrics_port=port)
    now = utc_now()
    with worker_session(settings) as session:
        run_sync(session)
        store = session.runtime.store
        ops = serve_ops(
            settings, store, session.broker, ["aurpay"], ledger_gauges=True, clock=lambda: now
        )
        assert ops is not None and ops.url == f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=ops.url, timeout=10) as http:
                assert http.get("/healthz").json() == {"status": "ok"}
                ready = http.get("/readyz")
                assert ready.status_code == 200, ready.text
                body = ready.json()
                assert body["ready"] is True and body["reason"].startswith("ready: database at")
                # Ready means "can serve": the gateways' sync age is a metric, never a probe.
                assert set(body["checks"]) == {"database", "broker"}
                metrics = http.get("/metrics")
                assert metrics.headers["content-type"].startswith("text/plain")
                missing = http.get("/nope")
                assert (missing.status_code, missing.json()["ok"]) == (404, False)
                wrong = http.post("/metrics")
                assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD")
                ops.mark_stopping()
                stopping = http.get("/readyz")
                assert (stopping.status_code, stopping.json()["reason"]) == (
                    503,
                    "not ready: shutting down",
                )
        finally:
            ops.stop()
        seen = scrape(metrics.text)
        cursors = {c.feed: c for c in RunState(store.engine).cursors()}
        alerts = Counter((a.rule, a.status) for a in AlertStore(store.engine).list_alerts())
        first_seen: dict[str, datetime] = {}
        for a in AlertStore(store.engine).list_alerts():
            first_seen[a.rule] = min(first_seen.get(a.rule, a.first_seen_at), a.first_seen_at)
        head_seq = store.head()[0]

    def gauge(name: str, **labels: str) -> float:
        return seen[(name, frozenset(labels.items()))]

    assert gauge("tally_ledger_state_up") == 1
    for feed in ("orders", "transactions"):
        lag = (now - cursors[feed].high_water).total_seconds()
        assert gauge("tally_sync_lag_seconds", source="aurpay", feed=feed) == lag
        full = cursors[feed].last_full_scan_at.timestamp()
        assert (
            gauge("tally_sync_last_full_scan_timestamp_seconds", source="aurpay", feed=feed) == full
        )
    assert alerts, "the sandbox plants mismatches"
    for (rule, status), n in alerts.items():
        assert status == "open"  # none acknowledged yet: see the acknowledged test
        assert gauge("tally_alerts_open", rule=rule) == n
        age = max(0.0, (now - first_seen[rule]).total_seconds())  # the clock is fixed
        assert gauge("tally_alerts_oldest_open_age_seconds", rule=rule) == age
    assert gauge("tally_source_configured", source="aurpay") == 1
    assert gauge("tally_sync_interval_seconds", mode="incremental") == 60
    assert gauge("tally_queues_up") == 1
    for queue in ("tally-sync", "tally-objects", "tally-reconcile", "tally-alerts"):
        assert gauge("tally_queue_messages_pending", queue=queue) == 0
        assert gauge("tally_queue_dead_letters", queue=queue) == 0
    assert gauge("tally_ledger_head_seq") == head_seq
    assert gauge("tally_pages_fetched_total", source="aurpay", feed="orders") > 0
    assert gauge("process_cpu_seconds_total") > 0


def test_readiness_names_what_is_wrong(sqlite_url: str) -> None:
    now = utc_now()
    engine = make_engine(sqlite_url)
    try:
        behind = readiness(engine, None, ["aurpay"], now, 1800)
        assert not behind.ok
        assert behind.reason.startswith("not ready: database schema is behind (rev none, need ")

        upgrade(engine)
        fresh = readiness(
            engine, None, ["aurpay"], now, 1800, started_at=now - timedelta(minutes=5)
        )
        assert fresh.ok, fresh.reason
        assert "aurpay waiting for its first sync" in fresh.reason
        never = readiness(engine, None, ["aurpay"], now, 1800, started_at=now - timedelta(hours=1))
        assert never.reason == "not ready: aurpay has never synced"

        state = RunState(engine)
        state.start_run("r1", "aurpay", "full", now - timedelta(hours=3))
        state.plan_feed("r1", "orders", 0)
        state.finish_feed_if_complete("r1", "aurpay", "orders", now - timedelta(hours=2))
        state.mark_source(
            "aurpay", now - timedelta(hours=1), "aurpay GET /api/v2/order/: timed out"
        )
        stale = readiness(engine, None, ["aurpay"], now, 1800)
        assert stale.reason == (
            "not ready: aurpay last synced 2h 0m ago (limit 30m): aurpay GET /api/v2/order/: "
            "timed out"
        )
        assert readiness(engine, None, ["aurpay"], now, 0).ok  # 0: the age is not checked

        unreachable = load_settings(redis_url=closed_redis_url())
        broker = setup_broker(unreachable, connect_redis(unreachable))
        port = free_port()
        settings = load_settings(database_url=sqlite_url, tally_metrics_port=port)
        store = LedgerStore(engine, PrecisionTable())
        ops = serve_ops(settings, store, broker, ["aurpay"], ledger_gauges=False)
        assert ops is not None
        try:
            answer = httpx.get(f"{ops.url}/readyz", timeout=30)
        finally:
            ops.stop()
        assert answer.status_code == 503
        assert answer.json()["reason"].startswith("not ready: broker unreachable (ConnectionError")
        assert set(answer.json()["checks"]) == {"database", "broker"}
    finally:
        engine.dispose()


def _tally(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_tally_health_and_status(
    sqlite_url: str,
    sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(seed=43, orders=60, rate_invalid_record=0.05)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("AURPAY_API_KEY", SANDBOX_API_KEY)

    code, out = _tally(["health"], capsys)
    assert (code, out.count("\n")) == (1, 1)
    assert out.startswith("tally: no ledger at sqlite:")  # a read never creates one
    upgrade(sqlite_url)
    assert _tally(["health"], capsys) == (1, "not ready: aurpay has never synced\n")

    settings = sandbox_settings(sandbox, sqlite_url, aurpay_page_size=20)
    with worker_session(settings) as session:
        summary = run_sync(session)
        store = session.runtime.store
        counts, (seq, head) = store.counts(), store.head()
        alerts = Counter(a.rule for a in AlertStore(store.engine).list_alerts())
    code, out = _tally(["health"], capsys)
    assert (code, out.count("\n")) == (0, 1)
    assert out.startswith("ready: database at rev") and "aurpay synced" in out

    code, screen = _tally(["status"], capsys)
    assert code == 0, screen
    assert len(screen.splitlines()) <= 24  # one screen
    assert f"{summary.pages}/{summary.pages} pages, {summary.rejected} rejected" in screen
    assert summary.rejected > 0 and "latest run full" in screen and "finished" in screen
    assert f"{counts['snapshots']:,} snapshots · {counts['journal_entries']:,} journal" in screen
    assert f"chain     head #{seq} {head[:16]}…" in screen
    assert f"{sum(alerts.values())} open (" in screen
    assert all(f"{rule} {n}" in screen for rule, n in alerts.items())

    # A broker that does not answer: named, with its password left out of every line.
    monkeypatch.setenv("REDIS_URL", closed_redis_url().replace("//", "//:pa55word-x@"))
    code, out = _tally(["health"], capsys)
    assert (code, out.count("\n")) == (1, 1)
    assert out.startswith("not ready: broker unreachable")
    code, screen = _tally(["status"], capsys)
    assert code == 1 and "broker unreachable" in screen and "redis://127.0.0.1:" in screen
    assert "pa55word" not in out + screen


def test_a_taken_metrics_port_is_a_one_line_config_error(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(database_url=sqlite_url, tally_metrics_port=port)
        store = LedgerStore(make_engine(sqlite_url), PrecisionTable())
        broker = setup_broker(settings, None)
        try:
            with pytest.raises(ConfigError) as caught:
                serve_ops(settings, store, broker, [], ledger_gauges=False)
        finally:
            store.close()
    assert str(caught.value).startswith(
        f"invalid setting TALLY_METRICS_PORT: cannot listen on 127.0.0.1:{port} ("
    )
