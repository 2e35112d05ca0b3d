"""The sync worker when things go wrong: provider faults, a crash between commit and follow-up,
and a database that is unreachable or refuses a page midway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from dramatiq.rate_limits.backends import RedisBackend
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from ledger.storage.engine import upgrade
from ledger.storage.verify import verify_store
from sandbox.aurpay import RunningSandbox
from tests.conftest import PG_ADMIN_URL
from tests.helpers.ledger_view import truth_problems, versions_per_object
from tests.helpers.sandbox import (
    refundable_orders,
    run_sync,
    sandbox_settings,
    start_full_scan,
)
from tests.helpers.waiting import wait_until
from worker.app.session import worker_session
from worker.limits.ratelimit import SourceLimiter

SandboxFactory = Callable[..., RunningSandbox]


def test_with_429s_500s_and_truncated_pages_the_ledger_still_ends_exact(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(
        seed=21,
        orders=100,
        rate_429=0.1,
        rate_500=0.15,
        rate_truncated=0.15,
        rate_invalid_record=0.05,
        retry_after_seconds=1,
    )
    settings = sandbox_settings(sandbox, sqlite_url, aurpay_page_size=20)
    with capture_logs() as logs, worker_session(settings) as session:
        summary = run_sync(session)
        store = session.runtime.store

        assert truth_problems(store, sandbox.world) == []
        assert summary.rejected == len(sandbox.world.invalid_records())
        assert set(versions_per_object(store).values()) == {1}
        assert verify_store(store).ok
    faults = {e.get("fault") for e in logs if e["event"] == "sandbox_request"}
    assert {"429", "500", "truncated"} <= faults  # every kind of fault was met and survived


@pytest.mark.parametrize("redelivered", ["incremental_scan", "callback_refetch"])
def test_a_refund_follow_up_lost_between_commit_and_send_is_fetched_on_redelivery(
    sqlite_url: str, sandbox_factory: SandboxFactory, redelivered: str
) -> None:
    """A worker killed after committing an order's REFUNDED version but before sending the
    refund-info fetch: the redelivered message finds the version already stored (nothing new),
    yet must still fetch the missing refund-info rather than leave it to tomorrow's full scan."""
    sandbox = sandbox_factory(seed=22, orders=60)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        rt, store = session.runtime, session.runtime.store
        run_sync(session)
        order_id = refundable_orders(sandbox.world)[-1]  # the newest: on page 1
        sandbox.world.refund(order_id)
        # The attempt that died: its append committed, its follow-ups were never sent.
        source = rt.sources["aurpay"]
        if redelivered == "incremental_scan":
            records = source.fetch_page("orders", 1).records
        else:
            records = (source.fetch_object("order", order_id),)  # type: ignore[assignment]
        store.append(records, observed_at=rt.now())
        assert store.latest("aurpay", "order", order_id).payload["status"] == "REFUNDED"
        assert store.latest("aurpay", "refund", order_id) is None

        if redelivered == "incremental_scan":
            run_sync(session, "incremental")
        else:
            session.actors.fetch_object.send("aurpay", "order", order_id, None)
            session.worker.join(timeout=30)

        assert store.latest("aurpay", "refund", order_id) is not None
        assert truth_problems(store, sandbox.world) == []


def _retry_delays(caplog: pytest.LogCaptureFixture) -> dict[str, list[int]]:
    """message id → the delays dramatiq's Retries middleware scheduled for it, in order."""
    delays: dict[str, list[int]] = {}
    for record in list(caplog.records):
        if record.msg == "Retrying message %r in %d milliseconds.":
            message_id, delay = record.args  # type: ignore[misc]
            delays.setdefault(message_id, []).append(delay)
    return delays


@contextmanager
def _database_unreachable(pg_url: str) -> Iterator[None]:
    """Refuse new connections to the database and cut the open ones; allow them again after."""
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    try:
        yield
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


@pytest.mark.postgres
def test_while_the_database_is_unreachable_actors_back_off_and_finish_once_it_returns(
    pg_url: str, sandbox_factory: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(pg_url)
    sandbox = sandbox_factory(seed=23, orders=80)
    caplog.set_level(logging.INFO, logger="dramatiq")
    with worker_session(sandbox_settings(sandbox, pg_url, aurpay_page_size=25)) as session:
        store = session.runtime.store
        with _database_unreachable(pg_url):
            run_id = start_full_scan(session)
            # Both feed messages fail, and each is retried twice with a growing delay.
            wait_until(lambda: sum(len(d) >= 2 for d in _retry_delays(caplog).values()) >= 2)
        session.worker.join(timeout=60)

        for first, second, *_ in _retry_delays(caplog).values():
            assert second > first
        progress = session.runtime.state.feed_progress(run_id)
        assert all(done == expected for done, expected in progress.values()), progress
        assert truth_problems(store, sandbox.world) == []
        assert verify_store(store).ok


def _refuse_journal_writes_for(engine: Engine, external_ids: list[str]) -> Callable[[], None]:
    """Install a trigger that fails any journal insert for these objects; returns its remover.

    It fires after the page's snapshots were inserted in the same transaction, so a partial
    page would show as snapshots without their journal entries.
    """
    ids = ", ".join(f"'{i}'" for i in external_ids)  # digits only: sandbox order ids
    if engine.dialect.name == "postgresql":
        create = [
            "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'test: journal write refused'; END $$",
            "CREATE TRIGGER test_refuse BEFORE INSERT ON ledger_journal FOR EACH ROW "
            f"WHEN (NEW.external_id IN ({ids})) EXECUTE FUNCTION test_refuse()",
        ]
        drop = ["DROP TRIGGER test_refuse ON ledger_journal", "DROP FUNCTION test_refuse()"]
    else:
        create = [
            "CREATE TRIGGER test_refuse BEFORE INSERT ON ledger_journal "
            f"WHEN NEW.external_id IN ({ids}) "
            "BEGIN SELECT RAISE(ABORT, 'test: journal write refused'); END"
        ]
        drop = ["DROP TRIGGER test_refuse"]

    def run(statements: list[str]) -> None:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    run(create)
    return lambda: run(drop)


def test_a_page_whose_write_fails_midway_leaves_nothing_and_is_retried_whole(
    ledger_url: str, sandbox_factory: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = sandbox_factory(seed=24, orders=100)
    size = 25
    listed = sandbox.world.truth()["orders"]  # in the API's order: page 2 is [25:50]
    page_two = [o["order_id"] for o in listed[size : 2 * size]]
    caplog.set_level(logging.INFO, logger="dramatiq")
    with worker_session(sandbox_settings(sandbox, ledger_url, aurpay_page_size=size)) as session:
        store = session.runtime.store
        allow = _refuse_journal_writes_for(store.engine, page_two)
        try:
            run_id = start_full_scan(session)

            def only_page_two_left() -> bool:
                done, expected = session.runtime.state.feed_progress(run_id).get("orders", (0, 0))
                return bool(_retry_delays(caplog)) and expected > 0 and done == expected - 1

            wait_until(only_page_two_left)
            stored = {s.external_id for s in store.iter_latest("aurpay", "order")}
            assert stored  # the other pages were written…
            assert not stored & set(page_two)  # …and nothing of page 2, not even its snapshots
        finally:
            allow()
        session.worker.join(timeout=60)

        assert set(page_two) <= {s.external_id for s in store.iter_latest("aurpay", "order")}
        assert truth_problems(store, sandbox.world) == []
        assert verify_store(store).ok


@pytest.mark.redis
def test_a_killed_workers_request_slot_comes_back_while_others_keep_working(
    redis_namespace: tuple[str, str],
) -> None:
    redis_url, namespace = redis_namespace
    ttl = 0.3
    limiter = SourceLimiter(
        RedisBackend(url=redis_url), "aurpay", 2, 1000, namespace=namespace, slot_ttl=ttl
    )
    killed = limiter.slot()  # a worker killed mid-request: its slot is never released
    killed.__enter__()
    lock = threading.Lock()
    holding, most = 0, 0
    end = time.monotonic() + 5 * ttl  # steady traffic from two survivor threads

    def survivor() -> None:
        nonlocal holding, most
        while time.monotonic() < end:
            with limiter.slot():
                with lock:
                    holding += 1
                    if time.monotonic() > end - 2 * ttl:  # long after the dead slot's ttl
                        most = max(most, holding)
                time.sleep(0.03)
                with lock:
                    holding -= 1

    threads = [threading.Thread(target=survivor) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most == 2  # the survivors use the whole limit again
    assert killed is not None  # referenced until here: collecting it would release the slot
