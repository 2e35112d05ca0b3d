"""Readiness means "can serve", staleness is a metric; the queue, dead-letter, alert and chain
gauges an operator alerts on, read from real brokers and a real ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import dramatiq
import httpx
import pytest
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries
from prometheus_client import CollectorRegistry

from ledger.alerts.store import AlertStore
from ledger.precision import PrecisionTable
from ledger.storage import triggers
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.store import LedgerStore
from sandbox.aurpay import RunningSandbox
from tests.helpers.sandbox import run_sync, sandbox_settings
from tests.helpers.waiting import wait_until
from tests.integration.ops.test_metrics_health import free_port, sample, scrape
from worker.app.session import worker_session
from worker.broker import setup_broker
from worker.config import load_settings
from worker.metrics import ActorMetrics, LedgerStateCollector
from worker.ops.health import can_serve, serve_ops
from worker.ops.state import deployment_state, queue_state
from worker.ops.verify import ChainVerifier
from worker.sync.state import RunState
from worker.sync.status import utc_now

SandboxFactory = Callable[..., RunningSandbox]


def test_a_source_that_has_not_synced_for_hours_leaves_the_process_ready(sqlite_url: str) -> None:
    """During a gateway outage new pods must still become Ready (or the fix never rolls out)."""
    engine = make_engine(sqlite_url)
    try:
        upgrade(engine)
        now = utc_now()
        state = RunState(engine)
        state.start_run("r1", "aurpay", "full", now - timedelta(hours=5))
        state.plan_feed("r1", "orders", 0)
        state.finish_feed_if_complete("r1", "aurpay", "orders", now - timedelta(hours=4))
        state.mark_source("aurpay", now - timedelta(hours=4), "aurpay GET /api/v2/order/: 503")

        assert can_serve(engine, None).ok
        port = free_port()
        settings = load_settings(database_url=sqlite_url, tally_metrics_port=port)
        store = LedgerStore(engine, PrecisionTable())
        broker = setup_broker(settings, None)
        ops = serve_ops(settings, store, broker, ["aurpay"], ledger_gauges=True)
        assert ops is not None
        try:
            ready = httpx.get(f"{ops.url}/readyz", timeout=10)
            metrics = httpx.get(f"{ops.url}/metrics", timeout=10).text
        finally:
            ops.stop()
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"database", "broker"}
        # The staleness is there for the alert rule to see.
        seen = scrape(metrics)
        last = (now - timedelta(hours=4)).timestamp()
        key = frozenset({("source", "aurpay")})
        assert seen[("tally_sync_last_success_timestamp_seconds", key)] == pytest.approx(last)
        assert seen[("tally_source_configured", key)] == 1
    finally:
        engine.dispose()


def test_acknowledged_alerts_are_not_counted_as_open(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=42, orders=60)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        run_sync(session)
        store = session.runtime.store
        alerts = AlertStore(store.engine)
        live = alerts.list_alerts()
        assert len(live) >= 2, "the sandbox plants mismatches"
        alerts.acknowledge(live[0].id, "looking into it", utc_now())
        collector = LedgerStateCollector(lambda: deployment_state(store), utc_now)
        seen = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in collector.collect()
            for s in family.samples
        }

    def total(name: str) -> float:
        return sum(v for (n, _), v in seen.items() if n == name)

    assert total("tally_alerts_open") == len(live) - 1
    assert total("tally_alerts_acknowledged") == 1
    assert seen[("tally_alerts_acknowledged", (("rule", live[0].rule),))] == 1


@pytest.mark.redis
def test_queue_depth_age_and_dead_letters_on_redis(redis_namespace: tuple[str, str]) -> None:
    redis_url, namespace = redis_namespace
    middleware = [Retries(max_retries=0), ActorMetrics()]
    broker = RedisBroker(url=redis_url, namespace=namespace, middleware=middleware)
    try:

        @dramatiq.actor(broker=broker, queue_name="tally-test-q")
        def doomed(n: int) -> None:
            raise ValueError(f"fails on purpose {n}")

        for n in range(3):
            doomed.send(n)
        time.sleep(0.2)
        (waiting,) = queue_state(broker, ["tally-test-q"])
        assert (waiting.pending, waiting.dead_letters) == (3, 0)
        assert waiting.oldest_at is not None
        assert 0 <= (utc_now() - waiting.oldest_at).total_seconds() < 30

        before = sample("tally_messages_dead_lettered_total", queue="tally-test-q")
        waits = sample("tally_queue_wait_seconds_count", queue="tally-test-q")
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            wait_until(
                lambda: queue_state(broker, ["tally-test-q"])[0].dead_letters == 3, 30, "dead"
            )
        finally:
            worker.stop()
        (done,) = queue_state(broker, ["tally-test-q"])
        assert (done.pending, done.dead_letters, done.oldest_at) == (0, 3, None)
        assert sample("tally_messages_dead_lettered_total", queue="tally-test-q") - before == 3
        assert sample("tally_queue_wait_seconds_count", queue="tally-test-q") - waits == 3
    finally:
        broker.close()


def test_queue_gauges_on_the_embedded_broker(sqlite_url: str) -> None:
    broker = setup_broker(load_settings(database_url=sqlite_url), None)

    @dramatiq.actor(broker=broker, queue_name="tally-test-embedded")
    def later(n: int) -> None:
        """Never run here: the messages only wait."""

    later.send(1)
    later.send(2)
    (state,) = queue_state(broker, ["tally-test-embedded"])
    assert (state.pending, state.dead_letters) == (2, 0) and state.oldest_at is not None


def test_the_chain_verifier_exports_a_broken_chain(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=44, orders=20)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        run_sync(session)
        store = session.runtime.store
        verifier = ChainVerifier(store)
        assert list(verifier.collector.collect()) == []  # nothing until a verify ran
        report = verifier.run_once()
        assert report is not None and report.ok
        registry = CollectorRegistry()
        registry.register(verifier.collector)
        assert registry.get_sample_value("tally_chain_verify_ok") == 1
        assert registry.get_sample_value("tally_chain_verify_rows_checked") == report.entries > 0
        with store.engine.begin() as conn:
            for statement in triggers.drop_statements(store.engine.dialect.name):
                conn.execute(sa.text(statement))
            conn.execute(sa.text("UPDATE ledger_journal SET description = 'edited' WHERE seq = "
                                 "(SELECT MAX(seq) FROM ledger_journal)"))  # fmt: skip
        broken = verifier.run_once()
        assert broken is not None and not broken.ok
        assert registry.get_sample_value("tally_chain_verify_ok") == 0
        last = registry.get_sample_value("tally_chain_verify_last_run_timestamp_seconds")
        assert last is not None and abs(last - utc_now().timestamp()) < 60
