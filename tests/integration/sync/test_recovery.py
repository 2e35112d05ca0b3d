"""Recovery finds from the database what a killed process or an emptied broker left undone and
finishes it: follow-ups the ledger implies, runs resumed or marked interrupted, a missed full scan;
``tally status`` is not ready until it has checked since the scheduler started."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.model import RawRecord
from ledger.storage.store import LedgerStore
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import truth_problems
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.cli import main
from worker.app.session import WorkerSession, worker_session
from worker.app.wiring import build_recovery
from worker.gateways.aurpay.settings import SANDBOX_API_KEY
from worker.gateways.aurpay.source import AurpaySource
from worker.gateways.contract import FollowUp, Source
from worker.gateways.ebioro.source import EbioroSource
from worker.schedule.scheduler import DbTickStore, tick_of, tick_start
from worker.sync import engine as sync
from worker.sync.once import new_run_id
from worker.sync.recovery import IDLE_GRACE, Recovery
from worker.sync.status import utc_now

SandboxFactory = Callable[..., RunningSandbox]
FINAL_REFUND = {"amount": "10", "network_fee": "1", "obtained": "9", "to_addr": "T-back"}
EARLY, LATE = "2024-04-26T09:00:00.000Z", "2024-04-26T10:00:00.000Z"


def _pending(source: Source, store: LedgerStore, since: int = 0) -> dict[FollowUp, int]:
    return {p.follow_up: p.implied_by_seq for p in source.pending_follow_ups(store, since)}


def _append(store: LedgerStore, source: str, kind: str, external_id: str, **payload: Any) -> int:
    record = RawRecord(source, kind, external_id, payload)
    (stored,) = store.append([record], observed_at=utc_now()).new_snapshots
    return stored.seq


def test_aurpay_pending_refund_infos_are_read_from_the_ledger_alone(
    ledger_url: str, open_store: Callable[..., LedgerStore]
) -> None:
    store = open_store(ledger_url)
    source = AurpaySource("aurpay", client=None)  # type: ignore[arg-type]  # reads the ledger only

    def order(order_id: str, status: str, **more: Any) -> int:
        return _append(store, "aurpay", "order", order_id, order_id=order_id, status=status, **more)

    def refund(order_id: str, **fields: Any) -> int:
        return _append(store, "aurpay", "refund", order_id, order_id=order_id, **fields)

    missing = order("o-missing", "REFUNDED")
    order("o-fetched", "SUCCESS")
    order("o-fetched", "REFUNDED")
    refund("o-fetched", **FINAL_REFUND)
    order("o-paid", "SUCCESS", note="REFUNDED")  # the word, not the status
    refund("o-stale", amount="10")  # fetched before the order's latest version, not final
    stale = order("o-stale", "REFUNDED")
    refund("o-done", **FINAL_REFUND)  # final: an order version after it asks nothing more
    order("o-done", "REFUNDED")

    assert _pending(source, store) == {
        FollowUp("refund", "o-missing"): missing,
        FollowUp("refund", "o-stale"): stale,
    }
    assert _pending(source, store, since=missing) == {FollowUp("refund", "o-stale"): stale}

    refund("o-missing", **FINAL_REFUND)
    refund("o-stale", **FINAL_REFUND)
    assert _pending(source, store) == {}


def test_ebioro_pending_payments_are_read_from_the_ledger_alone(
    ledger_url: str, open_store: Callable[..., LedgerStore]
) -> None:
    store = open_store(ledger_url)
    source = EbioroSource("ebioro", client=None)  # type: ignore[arg-type]  # reads the ledger only

    def payment(payment_id: str, status: str, updated: str) -> dict[str, Any]:
        state = {"id": payment_id, "status": status, "updatedAt": updated}
        _append(store, "ebioro", "payment", payment_id, **state)
        return state

    def refund(refund_id: str, embedded: dict[str, Any]) -> int:
        return _append(store, "ebioro", "refund", refund_id, refund_id=refund_id, payment=embedded)

    payment("p-behind", "paid", EARLY)
    behind = refund("r-behind", {"id": "p-behind", "status": "refunded", "updatedAt": LATE})
    missing = refund("r-missing", {"id": "p-missing", "status": "refunded", "updatedAt": LATE})
    same = payment("p-same", "refunded", LATE)
    refund("r-same", same)
    payment("p-later", "settled", LATE)  # updated after the refund's copy: nothing to ask
    refund("r-later", {"id": "p-later", "status": "refunded", "updatedAt": EARLY})

    assert _pending(source, store) == {
        FollowUp("payment", "p-behind"): behind,
        FollowUp("payment", "p-missing"): missing,
    }
    assert _pending(source, store, since=behind) == {FollowUp("payment", "p-missing"): missing}


def _recovery(session: WorkerSession) -> Recovery:
    return build_recovery(
        session.runtime, session.actors, DbTickStore(session.runtime.store.engine)
    )


def _quiet() -> datetime:
    """A moment far enough after now that a run without progress since counts as abandoned."""
    return utc_now() + IDLE_GRACE + timedelta(seconds=1)


def test_a_full_scan_cut_short_is_resumed_and_its_lost_follow_ups_are_sent(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=41, orders=300)
    with worker_session(sandbox_settings(sandbox, ledger_url, aurpay_page_size=25)) as session:
        rt, store = session.runtime, session.runtime.store
        # What a killed process left: half the orders pages committed, their follow-ups never
        # sent, the transactions feed never planned, and an incremental run open. Pages append
        # their follow-ups themselves; those left to messages (a fetch that failed, a page
        # synced per object) are what a kill loses: the per-object path returns them all.
        cut = replace(rt.sync, inline_follow_ups=False)
        full = new_run_id("aurpay", "full")
        rt.state.start_run(full, "aurpay", "full", rt.now())
        _, plan = sync.begin_scan(cut, "aurpay", "orders", "full", full)
        rt.state.plan_feed(full, "orders", plan.max_page)
        for number in plan.pages[: len(plan.pages) // 2]:
            sync.sync_page(cut, "aurpay", "orders", number, full, rescan=True)
        incremental = "aurpay:sync_incremental@2024-06-17T00:01:00.000000Z"
        rt.state.start_run(incremental, "aurpay", "incremental", rt.now())
        rt.state.plan_feed(incremental, "orders", 3)
        assert truth_problems(store, sandbox.world)

        recovery = _recovery(session)
        first = recovery.run(utc_now())
        assert first.pending["aurpay"] == first.sent > 0  # the refund-infos never asked for
        assert (first.resumed, first.interrupted) == ((), ())  # progress just now: wait
        report = recovery.run(_quiet())
        assert (report.resumed, report.interrupted) == ((full,), (incremental,))
        session.worker.join(timeout=60)

        resumed, cut = rt.state.summary(full), rt.state.summary(incremental)
        assert resumed is not None and resumed.finished and not resumed.interrupted
        assert cut is not None and cut.interrupted and not cut.finished
        assert truth_problems(store, sandbox.world) == []
        again = recovery.run(_quiet())
        assert (again.resumed, again.interrupted, again.pending, again.sent) == (
            (),
            (),
            {"aurpay": 0},
            0,
        )


def _status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status"])
    return code, capsys.readouterr().out


def test_a_missed_full_scan_runs_and_status_waits_for_the_first_check(
    sqlite_url: str,
    sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(seed=42, orders=80)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("AURPAY_API_KEY", SANDBOX_API_KEY)
    settings = sandbox_settings(sandbox, sqlite_url, aurpay_page_size=20)
    with worker_session(settings) as session:
        rt = session.runtime
        run_sync(session, "incremental")  # a first sync, but never a full scan
        recovery = _recovery(session)
        recovery.started(rt.now())
        code, screen = _status(monkeypatch, capsys)
        assert code == 1 and "backlog unknown" in screen, screen

        now = utc_now()
        assert recovery.run(now).full_scans == ()  # the scheduler fires this period's tick
        interval = settings.sync_full_scan_interval_seconds
        DbTickStore(rt.store.engine).claim(
            "sync_full", tick_start(interval, tick_of(interval, now)), now
        )
        report = recovery.run(now)
        assert len(report.full_scans) == 1
        assert recovery.run(now).full_scans == ()  # it is open now
        session.worker.join(timeout=60)
        assert recovery.run(now + timedelta(hours=2)).full_scans == ()  # it completed
        assert {
            c.last_full_scan_at is not None for c in rt.state.cursors() if c.feed != "_source"
        } == {True}

    code, screen = _status(monkeypatch, capsys)
    assert code == 0, screen
    assert "recovery checked" in screen and "0 follow-ups pending" in screen
    assert "ready:" in screen and "recovery found 0 follow-ups pending" in screen
