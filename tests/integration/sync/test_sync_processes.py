"""The sync worker as a deployment runs it: ``tally worker`` processes on Redis and PostgreSQL.

A worker killed with SIGKILL mid-scan loses nothing (its unacknowledged messages are requeued
once its heartbeat is stale), and several workers share one scan without duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.open import open_ledger
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import (
    ledger_content,
    truth_problems,
    versions_per_object,
)
from tests.helpers.processes import TallyProcess, requeue_from_dead_workers, stop_all
from tests.helpers.sandbox import run_sync, sandbox_env, sandbox_settings
from worker.app.cli import main
from worker.app.session import worker_session
from worker.broker import setup_broker, wait_idle
from worker.config import load_settings
from worker.redis_client import connect_redis
from worker.sync.actors import QUEUES, declare_actors
from worker.sync.once import new_run_id
from worker.sync.state import RunState

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SandboxFactory = Callable[..., RunningSandbox]
HEARTBEAT_MS = 2000  # short, so a killed worker's messages come back quickly
PAGE = 10


@pytest.fixture(autouse=True)
def _restore_global_broker() -> Iterator[None]:
    previous = dramatiq.broker.global_broker
    yield
    dramatiq.set_broker(previous)  # type: ignore[arg-type]


def _enqueue_full_scan(redis_url: str, namespace: str) -> tuple[dramatiq.Broker, str]:
    """Send a full scan to the workers over Redis, the way the scheduler does."""
    settings = load_settings(redis_url=redis_url)
    broker = setup_broker(settings, connect_redis(settings), namespace=namespace)
    actors = declare_actors(broker)
    run_id = new_run_id("aurpay", "full")
    for feed in ("orders", "transactions"):
        actors.sync_feed.send("aurpay", feed, "full", run_id)
    return broker, run_id


def _pages_done(state: RunState, run_id: str) -> int:
    return sum(done for done, _ in state.feed_progress(run_id).values())


def _scan_complete(state: RunState, run_id: str) -> bool:
    progress = state.feed_progress(run_id)
    return len(progress) == 2 and all(0 < exp <= done for done, exp in progress.values())


def _idle_after_requeue(broker: dramatiq.Broker, redis_url: str, namespace: str) -> bool:
    requeue_from_dead_workers(redis_url, namespace, list(QUEUES), HEARTBEAT_MS)
    try:
        wait_idle(broker, QUEUES, timeout=0.3)
    except TimeoutError:
        return False
    return True


def _unacked(redis_url: str, namespace: str) -> int:
    """Messages fetched by some worker and not yet acknowledged."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(client.scard(k) for k in client.scan_iter(f"{namespace}:__acks__.*"))
    finally:
        client.close()


def _tally_verify(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """``tally verify`` (in this process: the command, without a second interpreter start)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    capsys.readouterr()
    code = main(["verify"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def _calls(process: TallyProcess) -> list[dict[str, Any]]:
    return [e for e in process.events() if e.get("event") == "aurpay_call"]


def test_kill_9_mid_scan_then_a_new_worker_gives_the_ledger_of_a_clean_run(
    pg_url: str,
    sqlite_url: str,
    redis_namespace: tuple[str, str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    redis_url, namespace = redis_namespace
    sandbox = sandbox_factory(seed=31, orders=300, latency_ms=25)  # small pages, below: ~50
    upgrade(pg_url)
    env = sandbox_env(
        sandbox,
        pg_url,
        redis_url=redis_url,
        redis_namespace=namespace,
        tally_heartbeat_timeout_ms=HEARTBEAT_MS,
        aurpay_page_size=PAGE,
        tally_worker_threads=4,
        # The killed worker's concurrency slots stay taken until their 60 s lease ends; twice
        # its threads leaves the new worker a full set meanwhile.
        aurpay_max_concurrency=8,
    )
    state_engine = make_engine(pg_url)
    state = RunState(state_engine)
    first = TallyProcess(["worker"], env, tmp_path / "worker-1.log")
    try:
        first.wait_for_event("tally_started")
        broker, run_id = _enqueue_full_scan(redis_url, namespace)
        first.wait_for(lambda: _pages_done(state, run_id) >= 8)  # of some 50
        # Stall the provider so the kill surely lands with requests, hence messages, in flight.
        sandbox.world.set_faults(latency_ms=2000)
        first.kill()
        sandbox.world.set_faults(latency_ms=25)
        assert not _scan_complete(state, run_id)
        assert _unacked(redis_url, namespace) > 0

        second = TallyProcess(["worker"], env, tmp_path / "worker-2.log")
        try:
            second.wait_for_event("tally_started")
            second.wait_for(lambda: _idle_after_requeue(broker, redis_url, namespace))
        finally:
            assert second.stop() == 0
        assert _scan_complete(state, run_id)
    finally:
        first.stop()
        state_engine.dispose()

    with worker_session(sandbox_settings(sandbox, sqlite_url, aurpay_page_size=PAGE)) as clean:
        run_sync(clean)
        expected = ledger_content(clean.runtime.store)
    store = open_ledger(pg_url, PrecisionTable())
    try:
        resumed = ledger_content(store)
        assert resumed.differences(expected) == []
        assert truth_problems(store, sandbox.world) == []
    finally:
        store.close()
    assert _tally_verify(pg_url, monkeypatch, capsys).startswith("ledger intact:")


def test_two_workers_share_one_scan_without_duplicates(
    pg_url: str,
    redis_namespace: tuple[str, str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    redis_url, namespace = redis_namespace
    sandbox = sandbox_factory(seed=32, orders=600)
    upgrade(pg_url)
    env = sandbox_env(
        sandbox,
        pg_url,
        redis_url=redis_url,
        redis_namespace=namespace,
        aurpay_page_size=25,
        tally_worker_threads=2,
        tally_log_level="debug",  # one aurpay_call line per request, tagged with its message
    )
    workers = [TallyProcess(["worker"], env, tmp_path / f"worker-{i}.log") for i in (1, 2)]
    try:
        for worker in workers:
            worker.wait_for_event("tally_started")
        broker, run_id = _enqueue_full_scan(redis_url, namespace)
        wait_idle(broker, QUEUES, timeout=90)
    finally:
        codes = stop_all(workers)
    assert codes == [0, 0]

    calls = [_calls(worker) for worker in workers]
    pages = [{c["path"] for c in mine if c["actor"] == "sync_page"} for mine in calls]
    assert all(pages), "each worker synced some pages"
    every = Counter(c["path"] for mine in calls for c in mine)
    assert [path for path, n in every.items() if n > 1] == []  # no request made twice
    store = open_ledger(pg_url, PrecisionTable())
    try:
        assert _scan_complete(RunState(store.engine), run_id)
        assert truth_problems(store, sandbox.world) == []
        assert set(versions_per_object(store).values()) == {1}
    finally:
        store.close()
    assert _tally_verify(pg_url, monkeypatch, capsys).startswith("ledger intact:")
