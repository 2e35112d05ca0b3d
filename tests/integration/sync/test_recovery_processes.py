"""Recovery as deployed, with default intervals: ``tally run`` killed with SIGKILL while
refund-infos are being fetched, or its Redis emptied under it, converges to the sandbox's truth
within the first scheduler pass after the restart, and leaves no run "in progress"."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine
from ledger.storage.store import LedgerStore
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import truth_objects, truth_problems
from tests.helpers.processes import TallyProcess
from tests.helpers.sandbox import sandbox_env
from worker.sync.state import RunState

SandboxFactory = Callable[..., RunningSandbox]
CONVERGE_WITHIN = 180  # seconds; default settings: the first pass after the restart
ORDERS = 1500  # some 200 refund-infos, ~2 s of fetching at 40 ms each on 4 threads


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> RunningSandbox:
    return sandbox_factory(seed=51, orders=ORDERS, latency_ms=40)


@pytest.fixture
def store(ledger_url: str) -> Iterator[LedgerStore]:
    store = LedgerStore(make_engine(ledger_url), PrecisionTable())
    yield store
    store.close()


def _refunds(store: LedgerStore) -> int:
    return sum(1 for _ in store.iter_latest("aurpay", "refund"))


def _every_run_settled(store: LedgerStore) -> bool:
    """No run is left "in progress": each finished or was marked interrupted."""
    state = RunState(store.engine)
    runs = state.latest_runs("aurpay", 1000)
    return bool(runs) and all(run.finished or run.interrupted for run in runs)


def _converged(process: TallyProcess, store: LedgerStore, sandbox: RunningSandbox) -> float:
    """Seconds until the ledger equals the truth and every run settled (fails after the limit)."""
    start, refunds = time.monotonic(), _wanted_refunds(sandbox)
    process.wait_for(
        lambda: _refunds(store) == refunds and not truth_problems(store, sandbox.world),
        timeout=CONVERGE_WITHIN,
    )
    took = time.monotonic() - start
    process.wait_for(lambda: _every_run_settled(store), timeout=CONVERGE_WITHIN - took)
    return took


def _wanted_refunds(sandbox: RunningSandbox) -> int:
    return sum(kind == "refund" for kind, _ in truth_objects(sandbox.world))


def _recovered(process: TallyProcess) -> list[dict[str, Any]]:
    return [e for e in process.events() if e.get("event") == "recovery_checked"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_kill_9_of_tally_run_mid_refund_infos_converges_after_restart(
    store: LedgerStore, ledger_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = sandbox_env(sandbox, ledger_url)  # default intervals, embedded broker
    wanted = _wanted_refunds(sandbox)
    first = TallyProcess(["run"], env, tmp_path / "run-1.log")
    try:
        first.wait_for(lambda: _refunds(store) >= 0.3 * wanted, timeout=120)
        first.kill()
    finally:
        first.stop()
    lost = wanted - _refunds(store)
    assert lost > 0 and truth_problems(store, sandbox.world)

    second = TallyProcess(["run"], env, tmp_path / "run-2.log")
    try:
        took = _converged(second, store, sandbox)
        passes = _recovered(second)
    finally:
        assert second.stop() == 0
    print(f"kill -9 at {wanted - lost}/{wanted} refund-infos: converged {took:.1f}s after restart")
    # Recovery redid what the killed process lost: refund-infos travel with their page, so
    # mostly pages (the full scan resumed), and any follow-up left to a message (sent again).
    assert passes and (passes[0]["sent"] > 0 or passes[0]["resumed"])


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_emptied_redis_under_tally_run_converges_within_a_pass(
    store: LedgerStore,
    ledger_url: str,
    sandbox: RunningSandbox,
    redis_namespace: tuple[str, str],
    tmp_path: Path,
) -> None:
    redis_url, namespace = redis_namespace
    env = sandbox_env(sandbox, ledger_url, redis_url=redis_url, redis_namespace=namespace)
    wanted = _wanted_refunds(sandbox)
    client = redis.Redis.from_url(redis_url)
    process = TallyProcess(["run"], env, tmp_path / "run.log")
    try:
        process.wait_for(lambda: _refunds(store) >= 0.3 * wanted, timeout=120)
        # Redis restarted empty: queued messages, the scheduler's lease, heartbeats, all gone.
        client.delete(*client.scan_iter(f"{namespace}*"))
        dropped = wanted - _refunds(store)
        took = _converged(process, store, sandbox)
    finally:
        assert process.stop() == 0
        client.close()
    print(f"Redis emptied with {dropped} refund-infos to go: converged in {took:.1f}s")
    # A pass after the first one redid the lost messages: pages (their refund-infos travel
    # with them) or follow-ups.
    assert any(e["sent"] or e["resumed"] for e in _recovered(process)[1:])
