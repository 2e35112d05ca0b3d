"""The sync worker against the Aurpay sandbox over real HTTP, in one process (embedded broker).

Full scans (exact truth, quarantined junk, nothing appended twice, a plan that grows with the
feed), incremental walks (newest-first and oldest-first), refunds caught by a later full scan or
by a callback and re-fetched until final outside the recheck window (every full scan re-fetches
them inside it: test_refund_convergence.py), and the ``tally sync --once`` command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger import jsonx
from ledger.storage.sync_tables import SYNC_RUN, SYNC_RUN_ITEM
from ledger.storage.verify import verify_store
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import quarantined, stored, truth_problems, versions_per_object
from tests.helpers.sandbox import (
    refundable_orders,
    run_sync,
    sandbox_env,
    sandbox_settings,
    start_full_scan,
)
from tests.helpers.waiting import wait_until
from worker.app.cli import main
from worker.app.session import WorkerSession, worker_session
from worker.app.wiring import build_callback_server
from worker.inbound.server import callback_path

SandboxFactory = Callable[..., RunningSandbox]


def _runs(session: WorkerSession) -> int:
    with session.runtime.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SYNC_RUN)).scalar_one())


def _refund_entries(store: Any, order_id: str) -> list[Any]:
    return [
        e
        for e in store.iter_journal()
        if e.external_id == order_id and e.extra["object_kind"] == "refund"
    ]


def _add_orders_and_pay_one(sandbox: RunningSandbox, count: int) -> None:
    """New orders (random statuses, some already paid), and one more payment among them."""
    new = sandbox.world.add_orders(count)
    while not (unpaid := [o for o in new if sandbox.world.order(o)["status"] == "PENDING"]):
        new = sandbox.world.add_orders(1)
    sandbox.world.pay(unpaid[0])


def test_a_full_sync_writes_exactly_the_truth_and_a_second_appends_nothing(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=11, orders=160, rate_invalid_record=0.06)
    invalid = sandbox.world.invalid_records()
    assert {r.endpoint for r in invalid} == {"orders", "transactions"}  # the world planted both

    with worker_session(sandbox_settings(sandbox, ledger_url, aurpay_page_size=40)) as session:
        store = session.runtime.store
        first = run_sync(session)

        assert truth_problems(store, sandbox.world) == []
        assert first.new_snapshots == store.counts()["snapshots"]
        assert first.journal_entries == store.counts()["journal_entries"] > 0
        assert first.rejected == len(invalid)
        rows = quarantined(store.engine)
        assert sorted(jsonx.canonical(jsonx.loads(r["raw"])) for r in rows) == sorted(
            jsonx.canonical(r.record) for r in invalid
        )
        # Every row says why, naming the field the sandbox broke on purpose.
        planted = {jsonx.canonical(r.record): r.reason.split()[0] for r in invalid}
        for row in rows:
            assert planted[jsonx.canonical(jsonx.loads(row["raw"]))] in row["reason"]
        assert set(versions_per_object(store).values()) == {1}

        head = store.head()
        second = run_sync(session)

        assert (second.new_snapshots, second.journal_entries) == (0, 0)
        assert store.head() == head
        assert verify_store(store).ok


def test_a_resync_does_not_quarantine_the_same_record_twice(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=11, orders=60, rate_invalid_record=0.1)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        run_sync(session)
        once = len(quarantined(session.runtime.store.engine))
        run_sync(session)
        assert len(quarantined(session.runtime.store.engine)) == once


def test_an_old_order_refunded_later_is_caught_by_the_next_full_scan(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=12, orders=150)
    with worker_session(sandbox_settings(sandbox, sqlite_url, aurpay_page_size=40)) as session:
        store = session.runtime.store
        run_sync(session)
        order_id = refundable_orders(sandbox.world)[0]  # the oldest: on the last page
        sandbox.world.refund(order_id)

        # Why the daily full scan exists: an incremental walk stops at old orders.
        run_sync(session, "incremental")
        assert stored(store, "order", order_id).payload["status"] != "REFUNDED"

        full = run_sync(session)

        order = stored(store, "order", order_id)
        assert (order.version, order.payload["status"]) == (2, "REFUNDED")
        assert store.latest("aurpay", "refund", order_id) is not None
        assert _refund_entries(store, order_id)
        assert full.new_snapshots == 2  # the order's new version and its refund-info
        assert truth_problems(store, sandbox.world) == []
        assert verify_store(store).ok


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refund_arrives_through_a_callback_without_any_scan(
    sqlite_url: str, sandbox_factory: SandboxFactory, method: str
) -> None:
    sandbox = sandbox_factory(seed=13, orders=80)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        store = session.runtime.store
        run_sync(session)
        runs = _runs(session)
        server = build_callback_server(session.runtime, session.actors, "127.0.0.1", 0)
        server.start()
        try:
            sandbox.world.set_callbacks(server.url + callback_path("aurpay"), method)
            order_id = refundable_orders(sandbox.world)[0]
            sandbox.world.refund(order_id)
            assert sandbox.world.wait_for_deliveries(1, timeout=10)
            session.worker.join(timeout=30)
        finally:
            server.stop()

        assert [(d.order_id, d.status) for d in sandbox.world.deliveries()] == [(order_id, 200)]
        order = stored(store, "order", order_id)
        assert (order.version, order.payload["status"]) == (2, "REFUNDED")
        assert store.latest("aurpay", "refund", order_id) is not None
        assert _refund_entries(store, order_id)
        assert truth_problems(store, sandbox.world) == []
        assert _runs(session) == runs  # no scan ran


def test_incremental_sync_reads_one_page_per_feed_when_quiet_and_catches_new_orders(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=14, orders=400)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        store = session.runtime.store
        full = run_sync(session)
        assert full.pages > 4

        quiet = run_sync(session, "incremental")
        assert (quiet.pages, quiet.new_snapshots) == (2, 0)  # page 1 of each feed

        _add_orders_and_pay_one(sandbox, 3)
        busy = run_sync(session, "incremental")

        assert busy.new_snapshots >= 4  # three orders and a transaction
        assert truth_problems(store, sandbox.world) == []


def test_an_oldest_first_feed_is_detected_and_walked_from_its_end(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=15, orders=200, newest_first=False)
    settings = sandbox_settings(sandbox, sqlite_url, aurpay_page_size=20, sync_lookback_seconds=600)
    with worker_session(settings) as session:
        store = session.runtime.store
        full = run_sync(session)
        _add_orders_and_pay_one(sandbox, 3)

        incremental = run_sync(session, "incremental")

        # Page 1 (to learn the order), then back from the last page to the floor: per feed,
        # the new page, the page holding the high-water mark, and the one that crosses the floor.
        assert incremental.pages <= 8 < full.pages
        assert truth_problems(store, sandbox.world) == []


def test_the_sync_command_reports_what_it_wrote_and_then_nothing(
    sqlite_url: str,
    sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(seed=16, orders=90, rate_invalid_record=0.05)
    for name, value in sandbox_env(sandbox, sqlite_url).items():
        monkeypatch.setenv(name, value)
    rejected = len(sandbox.world.invalid_records())

    assert main(["sync", "--once"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["sync", "--once"]) == 0
    second = capsys.readouterr().out.strip()
    assert main(["verify"]) == 0
    verified = capsys.readouterr().out

    assert first.startswith("sync full aurpay: pages=2 new_snapshots=")
    assert first.endswith(f"rejected={rejected}")
    assert (
        second == f"sync full aurpay: pages=2 new_snapshots=0 journal_entries=0 rejected={rejected}"
    )
    assert verified.startswith("ledger intact")


def test_orders_added_during_a_full_scan_extend_its_plan(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=17, orders=100, latency_ms=40)
    settings = sandbox_settings(sandbox, sqlite_url, aurpay_page_size=5, tally_worker_threads=2)
    with worker_session(settings) as session:
        state = session.runtime.state
        run_id = start_full_scan(session)
        wait_until(lambda: state.feed_progress(run_id).get("orders", (0, 0))[0] >= 2)
        sandbox.world.add_orders(30)  # six more pages; every older order moves down six pages
        session.worker.join(timeout=60)

        assert state.feed_progress(run_id)["orders"] == (26, 26)
        # Page 1 was read before the new orders came: the next incremental run brings them.
        run_sync(session, "incremental")
        assert truth_problems(session.runtime.store, sandbox.world) == []


def test_an_empty_account_syncs_to_an_empty_ledger(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=18, orders=0)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        full = run_sync(session)
        incremental = run_sync(session, "incremental")

        assert (full.pages, full.new_snapshots, incremental.pages) == (2, 0, 2)
        assert session.runtime.store.counts()["snapshots"] == 0


def _refund_fetches(store: Any, run_id: str) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(SYNC_RUN_ITEM.c.item).where(
                SYNC_RUN_ITEM.c.run_id == run_id, SYNC_RUN_ITEM.c.item.like("refund:%")
            )
        )
        return [row.item for row in rows]


def test_outside_the_recheck_window_full_scans_refetch_a_refund_info_until_it_looks_final(
    sqlite_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=19, orders=80)
    order_id = sandbox.world.truth()["refund_infos"][0]["order_id"]
    sandbox.world.update_refund_info(order_id, {"to_addr": ""})  # not settled yet
    # The sandbox's refunds date from 2025: all older than a one-day window.
    settings = sandbox_settings(sandbox, sqlite_url, aurpay_refund_recheck_max_age_days=1)
    with worker_session(settings) as session:
        store = session.runtime.store
        run_sync(session)
        assert stored(store, "refund", order_id).payload["to_addr"] == ""

        sandbox.world.update_refund_info(order_id, {"to_addr": "TQ7settledaddress"})
        settling = run_sync(session)
        settled = run_sync(session)

        assert _refund_fetches(store, settling.run_id) == [f"refund:{order_id}"]
        assert stored(store, "refund", order_id).version == 2
        assert _refund_fetches(store, settled.run_id) == []  # final: left alone
        assert truth_problems(store, sandbox.world) == []


def test_a_refused_api_key_fails_the_command_with_a_one_line_reason(
    sqlite_url: str,
    sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(seed=20, orders=20)
    for name, value in sandbox_env(sandbox, sqlite_url, aurpay_api_key="not-the-key").items():
        monkeypatch.setenv(name, value)

    assert main(["sync", "--once"]) == 1

    err = capsys.readouterr().err
    reasons = [line for line in err.splitlines() if line.startswith("tally:")]
    assert len(reasons) == 1
    assert "HTTP 401" in reasons[0]
    assert "not-the-key" not in err  # neither in the reason nor in any log line
