"""The deployment end to end: the Procfile's processes, run as a platform runs them (``sh -c``
with the venv's ``tally`` console script on PATH), on PostgreSQL and Redis against the sandbox.

The release step migrates; the scheduler starts a sync; the workers' counters move on /metrics;
every process is ready on /readyz; SIGTERM mid-scan stops the worker and the scheduler cleanly
(nothing left unacknowledged, the lease released); after a restart the ledger equals the
sandbox's truth with nothing lost or duplicated, and ``tally verify`` passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine
from ledger.storage.open import open_ledger
from ledger.storage.sync_tables import SYNC_RUN
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import ledger_content, truth_problems, versions_per_object
from tests.helpers.processes import TallyProcess
from tests.helpers.sandbox import run_sync, sandbox_env, sandbox_settings
from tests.helpers.waiting import wait_until
from worker.app.session import worker_session
from worker.broker import run_in_process, setup_broker
from worker.config import load_settings
from worker.gateways.aurpay.settings import (
    SANDBOX_API_KEY,
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)
from worker.redis_client import connect_redis
from worker.sync.actors import QUEUES
from worker.sync.state import RunState

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SandboxFactory = Callable[..., RunningSandbox]
ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = ROOT / ".venv" / "bin"
PAGE = 10
HEARTBEAT_MS = 2000


@pytest.fixture(autouse=True)
def _restore_global_broker() -> Iterator[None]:
    previous = dramatiq.broker.global_broker
    yield
    dramatiq.set_broker(previous)  # type: ignore[arg-type]


def procfile() -> dict[str, str]:
    text = (ROOT / "Procfile").read_text(encoding="utf-8")
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """The Procfile's process types on one machine, each with its own metrics port."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**env, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
        self.logs = logs
        self.commands = procfile()
        self.ports: dict[str, int] = {}
        self.started: list[TallyProcess] = []

    def release(self) -> str:
        done = subprocess.run(
            ["sh", "-c", f"exec {self.commands['release']}"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, kind: str, **extra: str) -> TallyProcess:
        port = self.ports.setdefault(kind, free_port())
        env = {**self.env, "TALLY_METRICS_PORT": str(port), **extra}
        log = self.logs / f"{kind}-{len(self.started)}.log"
        process = TallyProcess([f"exec {self.commands[kind]}"], env, log, program=["sh", "-c"])
        self.started.append(process)
        process.wait_for_event("tally_started")
        return process

    def get(self, kind: str, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports[kind]}{path}", timeout=10)

    def metrics(self, kind: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        answer = self.get(kind, "/metrics")
        assert answer.status_code == 200
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples
        }

    def stop_all(self) -> None:
        for process in self.started:
            process.terminate()
        for process in self.started:
            process.stop()


def counter(
    seen: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return sum(v for (n, ls), v in seen.items() if n == name and labels.items() <= dict(ls).items())


def run_ids(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(SYNC_RUN.c.run_id)).scalars())


def pages_done(state: RunState, ids: list[str]) -> int:
    return sum(done for run_id in ids for done, _ in state.feed_progress(run_id).values())


def all_complete(state: RunState, ids: list[str]) -> bool:
    progress = [state.feed_progress(run_id) for run_id in ids]
    return bool(ids) and all(
        len(feeds) == 2 and all(0 < expected <= done for done, expected in feeds.values())
        for feeds in progress
    )


def pending(broker: RedisBroker) -> int:
    """Messages queued, delayed or held by a worker, on every queue."""
    return sum(int(broker.do_qsize(queue)) for queue in QUEUES)


def unacked(client: redis.Redis, namespace: str) -> int:
    return sum(client.scard(key) for key in client.scan_iter(f"{namespace}:__acks__.*"))


def test_procfile_processes_sync_scrape_sigterm_restart_and_end_exact(
    pg_url: str,
    sqlite_url: str,
    redis_namespace: tuple[str, str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
) -> None:
    redis_url, namespace = redis_namespace
    sandbox = sandbox_factory(seed=71, orders=200, latency_ms=30)
    env = sandbox_env(
        sandbox,
        pg_url,
        redis_url=redis_url,
        redis_namespace=namespace,
        aurpay_page_size=PAGE,
        aurpay_callback_token=SANDBOX_CALLBACK_TOKEN,
        aurpay_callback_secret=SANDBOX_CALLBACK_SECRET,
        tally_heartbeat_timeout_ms=HEARTBEAT_MS,
        tally_worker_threads=4,
        tally_log_format="auto",  # JSON, because stderr is a file
        tally_shutdown_grace_seconds=10,
        sync_incremental_interval_seconds=10,
    )
    deployment = Deployment(env, tmp_path)
    engine = make_engine(pg_url)
    state = RunState(engine)
    client = redis.Redis.from_url(redis_url)
    queues = RedisBroker(url=redis_url, namespace=namespace, middleware=[])
    try:
        assert "database at revision" in deployment.release()

        worker = deployment.start("worker")
        idle = deployment.metrics("worker")
        assert counter(idle, "tally_pages_fetched_total") == 0
        callback_port = free_port()
        deployment.start("callbacks", PORT=str(callback_port), TALLY_CALLBACK_HOST="127.0.0.1")
        callback_health = httpx.get(f"http://127.0.0.1:{callback_port}/healthz", timeout=10)
        assert callback_health.json() == {"status": "ok"}  # the Procfile's --port took effect
        scheduler = deployment.start("scheduler")
        scheduler.wait_for_event("scheduler_tick_enqueued")

        worker.wait_for(lambda: pages_done(state, run_ids(engine)) >= 8)
        busy = deployment.metrics("worker")
        assert counter(busy, "tally_pages_fetched_total", source="aurpay") > 0
        assert counter(busy, "tally_source_requests_total", source="aurpay", status="200") > 0
        assert counter(busy, "tally_snapshots_appended_total", source="aurpay") > 0
        assert counter(busy, "tally_journal_entries_appended_total", source="aurpay") > 0
        assert counter(busy, "tally_actor_duration_seconds_count", actor="sync_page") > 0
        for kind in ("worker", "scheduler", "callbacks"):
            ready = deployment.get(kind, "/readyz")
            assert ready.status_code == 200, f"{kind}: {ready.text}"
            assert deployment.get(kind, "/healthz").json() == {"status": "ok"}
            # Ready means "can serve"; a gateway's sync age is a metric, never a probe.
            assert set(ready.json()["checks"]) == {"database", "broker"}, kind
        scheduler_metrics = deployment.metrics("scheduler")
        assert counter(scheduler_metrics, "tally_ledger_state_up") == 1
        assert counter(scheduler_metrics, "tally_queues_up") == 1

        # SIGTERM mid-scan: in-flight messages finish, the rest go back; the lease is released.
        worker.terminate()
        scheduler.terminate()
        assert (worker.stop(), scheduler.stop()) == (0, 0)
        assert not all_complete(state, run_ids(engine))
        assert unacked(client, namespace) == 0 and pending(queues) > 0
        assert client.exists(f"{namespace}:lease:scheduler") == 0
        assert {"tally_stopping", "tally_stopped"} <= {e["event"] for e in worker.events()}
        assert "scheduler_lease_released" in {e["event"] for e in scheduler.events()}

        worker = deployment.start("worker")
        scheduler = deployment.start("scheduler")
        worker.wait_for(lambda: all_complete(state, run_ids(engine)), timeout=60)
        scheduler.terminate()  # no new runs from here on
        assert scheduler.stop() == 0
        worker.wait_for(lambda: all_complete(state, run_ids(engine)) and pending(queues) == 0)
        assert counter(deployment.metrics("worker"), "tally_pages_fetched_total") > 0
    finally:
        deployment.stop_all()
        queues.client.close()
        client.close()
        engine.dispose()
    assert [p.proc.returncode for p in deployment.started] == [0] * len(deployment.started)

    # Logs: JSON lines off a terminal, and the API key in none of them.
    for process in deployment.started:
        text = process.log_path.read_text(encoding="utf-8")
        assert SANDBOX_API_KEY not in text
        assert all(json.loads(line) for line in text.splitlines() if line.strip())

    with worker_session(sandbox_settings(sandbox, sqlite_url, aurpay_page_size=PAGE)) as clean:
        run_sync(clean)
        expected = ledger_content(clean.runtime.store)
    store = open_ledger(pg_url, PrecisionTable())
    try:
        assert truth_problems(store, sandbox.world) == []
        assert set(versions_per_object(store).values()) == {1}
        assert ledger_content(store).differences(expected) == []
    finally:
        store.close()
    verify = subprocess.run(
        [str(VENV_BIN / "tally"), "verify"],
        env={**os.environ, "DATABASE_URL": pg_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0 and verify.stdout.startswith("ledger intact:"), verify.stdout
    status = subprocess.run(
        [str(VENV_BIN / "tally"), "status"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.splitlines()[1].startswith("health    ready: database at rev")
    assert "aurpay   last sync" in status.stdout and "finished:" in status.stdout


def test_a_message_still_running_when_the_grace_period_ends_goes_back_to_the_queue(
    redis_namespace: tuple[str, str],
) -> None:
    redis_url, namespace = redis_namespace
    settings = load_settings(redis_url=redis_url)
    broker = setup_broker(settings, connect_redis(settings), namespace=namespace)
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow(tag: str) -> None:
        runs.append(tag)
        started.set()
        release.wait(30)

    actor = dramatiq.actor(slow, actor_name="slow", queue_name="tally-test-slow", broker=broker)
    actor.send("page-7")
    first = run_in_process(broker, 1, ["tally-test-slow"], worker_timeout_ms=100)
    assert started.wait(30)
    first.stop(timeout=0.2)  # the grace period runs out with the message in progress

    client = redis.Redis.from_url(redis_url)
    try:
        assert unacked(client, namespace) == 0  # handed back now, not after the heartbeat
        assert client.llen(f"{namespace}:tally-test-slow") == 1
    finally:
        client.close()
    release.set()  # the first attempt ends; its late ack must not remove the requeued copy

    second = run_in_process(broker, 1, ["tally-test-slow"], worker_timeout_ms=100)
    try:
        wait_until(lambda: len(runs) == 2 and pending_one(broker) == 0, 30, lambda: f"runs {runs}")
    finally:
        second.stop()
    assert runs == ["page-7", "page-7"]  # ran again, which is why every actor is idempotent


def pending_one(broker: dramatiq.Broker) -> int:
    assert isinstance(broker, RedisBroker)
    return int(broker.do_qsize("tally-test-slow"))
