"""Reconcile against a real ledger (SQLite and PostgreSQL): a sandbox world's planted mismatches
come out exactly, once; alerts follow the data; indexes, sweep, meta-alerts and conflicts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlmodel import SQLModel

from ledger.alerts.rows import EVENT
from ledger.alerts.state import ACKNOWLEDGED, OPEN, RESOLVED
from ledger.alerts.store import AlertStore, Commit, ReconcileConflict
from ledger.alerts.tables import ALERT_TABLES
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.reconcile.meta import SOURCE_UNREACHABLE, TOO_MANY_REJECTED
from ledger.storage.engine import make_engine
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from tests import ebioro_data as ebioro
from tests.helpers import books
from tests.strategies import order_payload, refund_payload, transaction_payload
from worker.alerts.reconcile import ReconcileContext, ReconcileReport, reconcile
from worker.app.cli import main
from worker.app.session import worker_session
from worker.broker import wait_idle
from worker.config import Settings, load_settings
from worker.gateways.aurpay import plan as aurpay_plan
from worker.gateways.aurpay import postings as aurpay_postings
from worker.gateways.aurpay.settings import SANDBOX_API_KEY
from worker.gateways.books import deriver_table, plan_table
from worker.sync.once import sync_once
from worker.sync.state import RunState

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    store: LedgerStore
    clock: Clock
    ctx: ReconcileContext

    def append(self, *records: RawRecord) -> None:
        self.store.append(records, observed_at=self.clock())

    def run(self, *, full: bool = False) -> ReconcileReport:
        return reconcile(self.ctx, full=full)

    def live(self) -> dict[tuple[str, str, str], Any]:
        return {(a.rule, a.subject_id, a.check): a for a in self.ctx.alerts.list_alerts()}


# Both gateways under their default names, and a second Aurpay account beside the first.
DERIVERS = {**books.DERIVERS, **deriver_table({"aurpay-eu": aurpay_postings.DERIVERS})}
PLANS = {**books.PLANS, **plan_table({"aurpay-eu": aurpay_plan.make_plan})}


@pytest.fixture
def env(ledger_url: str) -> Iterator[Env]:
    store = open_ledger(ledger_url, PrecisionTable(), derivers=DERIVERS)
    clock = Clock(T0)
    settings = load_settings(database_url=ledger_url, tally_refund_grace_seconds=3600)
    try:
        yield Env(store, clock, ReconcileContext.from_settings(store, settings, clock, PLANS))
    finally:
        store.close()


def order(order_id: str, **fields: Any) -> RawRecord:
    payload = order_payload(order_id=order_id, tx_id=f"tx-{order_id}", **fields)
    return RawRecord("aurpay", "order", order_id, payload)


def tx(tx_id: str, **fields: Any) -> RawRecord:
    return RawRecord("aurpay", "transaction", tx_id, transaction_payload(tx_id=tx_id, **fields))


def refund(order_id: str, **fields: Any) -> RawRecord:
    return RawRecord("aurpay", "refund", order_id, refund_payload(order_id=order_id, **fields))


GOOD = {"amount": "1.0", "fee": "0.1", "obtained": "0.9"}
SHORT = {"amount": "1.0", "fee": "0.1", "obtained": "0.8"}


# --- the sandbox, end to end through the CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _synced(url: str, sandbox_factory: Callable[..., Any]) -> tuple[Any, Settings]:
    """A sandbox world with planted mismatches and dust, fully synced into ``url``."""
    sandbox = sandbox_factory(seed=11, orders=160, mismatch_rate=0.2, dust_rate=0.3)
    world = sandbox.world
    assert world.dust_cases() and any(rule == "refund" for rule, _ in world.expected_mismatches())
    settings = load_settings(
        database_url=url, aurpay_base_url=sandbox.base_url, aurpay_api_key=SANDBOX_API_KEY
    )
    with worker_session(settings) as session:
        report = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=["aurpay"],
            mode="full",
            timeout=60,
        )
        assert report.ok, report.failure()
    return sandbox, settings


def _open_alerts(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return list(json.loads(_cli(capsys, "alerts", "--format", "json")))


def test_a_sandbox_world_yields_exactly_its_planted_mismatches(
    ledger_url: str,
    sandbox_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox, settings = _synced(ledger_url, sandbox_factory)
    world = sandbox.world
    monkeypatch.setenv("DATABASE_URL", ledger_url)

    assert "opened=" in _cli(capsys, "reconcile")
    alerts = _open_alerts(capsys)
    found = {(a["rule"], a["subject_id"]) for a in alerts}
    assert found == world.expected_mismatches()  # none missing, none extra: one per cause
    assert not found & world.dust_cases()  # dust never alerts
    assert all(a["status"] == OPEN and a["revision"] == 1 and a["snapshot_seqs"] for a in alerts)
    assert all(a["evidence"] and a["severity"] in ("page", "warn") for a in alerts)
    # A fee-absorbed refund, a payment in two transfers, an ERC-20 refund's fee in ETH: quiet.
    legit = set(world.legit_cases().values())
    assert len(legit) == 3 and not {subject for _, subject in found} & legit
    events = _events(ledger_url)

    second = _cli(capsys, "reconcile")
    assert "opened=0 updated=0 resolved=0" in second
    assert _events(ledger_url) == events  # nothing new announced

    fixed = sorted(subject for rule, subject in found if rule == "refund")[0]
    info = world.refund_info(fixed)
    world.update_refund_info(fixed, {"obtained": info["amount"] - info["network_fee"]})
    assert ("refund", fixed) not in world.expected_mismatches()
    with worker_session(settings) as session:
        session.actors.fetch_object.send("aurpay", "refund", fixed, None)
        wait_idle(session.broker, timeout=30)
    assert "resolved=1" in _cli(capsys, "reconcile")
    alerts = _open_alerts(capsys)
    found = {(a["rule"], a["subject_id"]) for a in alerts}
    assert found == world.expected_mismatches()
    closed = json.loads(_cli(capsys, "alerts", "--status", "resolved", "--format", "json"))
    assert [(a["rule"], a["subject_id"], a["resolved_by"]) for a in closed] == [
        ("refund", fixed, "reconcile")
    ]


def _events(url: str) -> int:
    store = open_ledger(url, PrecisionTable())
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EVENT)).scalar_one())
    finally:
        store.close()


# --- alerts follow the data


def test_evidence_changes_update_and_fixes_resolve(env: Env) -> None:
    env.append(order("o1", **SHORT), tx("tx-o1", **GOOD))
    first = env.run()
    # One cause, one incident: the broken equation and the disagreement with the transaction
    # are two checks of one alert, each with its numbers and snapshots.
    assert [(n.event, n.revision) for n in first.notifications] == [("opened", 1)]
    live = env.live()
    assert set(live) == {("order", "o1", "")}
    equation = live[("order", "o1", "")]
    assert equation.suspense_journal_key == "aurpay:order:o1:v1"  # carries the 0.1 in suspense
    assert [(c["check"], c["difference"]) for c in equation.evidence] == [
        ("", "0.1"),
        ("obtained", "-0.1"),
    ]
    assert equation.related == ("tx-o1",)
    assert len(equation.evidence[1]["snapshot_seqs"]) == 2  # the order's and the transaction's

    env.ctx.alerts.acknowledge(equation.id, "looking into it", env.clock())
    env.append(order("o1", amount="1.0", fee="0.1", obtained="0.7"))
    second = env.run()
    assert [(n.alert_id, n.event, n.revision) for n in second.notifications] == [
        (equation.id, "updated", 2)
    ]
    reopened = env.ctx.alerts.get(equation.id)
    assert (reopened.status, reopened.note) == (OPEN, "looking into it")
    assert reopened.difference == 2 * equation.difference
    assert reopened.suspense_journal_key == "aurpay:order:o1:v2"

    env.append(order("o1", **GOOD))
    third = env.run()
    assert [n.event for n in third.notifications] == ["resolved"]
    assert third.notifications[0].alert["resolution"] == "corrected"
    assert env.live() == {}
    assert env.run().notifications == []


def test_a_transaction_change_re_judges_its_order_through_the_index(env: Env) -> None:
    env.append(order("o1", **GOOD), tx("tx-o1", **GOOD))
    assert env.run().notifications == []
    env.clock.now += timedelta(minutes=1)
    env.append(tx("tx-o1", amount="1.1", fee="0.1", obtained="1.0"))
    report = env.run()
    assert report.counts["snapshots"] == 1
    [(key, alert)] = env.live().items()
    assert key == ("order", "o1", "")
    assert [c["check"] for c in alert.evidence] == ["amount", "obtained"]


def test_two_accounts_of_one_gateway_keep_their_own_books_and_alerts(env: Env) -> None:
    eu = order("o1", **SHORT)
    env.append(order("o1", **SHORT), RawRecord("aurpay-eu", eu.kind, eu.external_id, eu.payload))
    notes = env.run().notifications
    assert sorted((n.alert["source"], n.alert["rule"]) for n in notes) == [
        ("aurpay", "order"),
        ("aurpay-eu", "order"),
    ]
    accounts = {p.account for e in env.store.iter_journal() for p in e.postings}
    assert {"assets:aurpay:BTC", "assets:aurpay-eu:BTC"} <= accounts
    env.append(order("o1", **GOOD))  # fixed in one account only
    [resolved] = env.run().notifications
    assert (resolved.event, resolved.alert["source"]) == ("resolved", "aurpay")
    [(rule, subject, _)] = env.live()
    assert (rule, subject) == ("order", "o1")  # aurpay-eu's is still open
    assert {a.source for a in env.ctx.alerts.list_alerts()} == {"aurpay-eu"}


def test_a_person_resolving_keeps_the_same_evidence_quiet(env: Env) -> None:
    env.append(order("o1", **SHORT))
    env.run()
    [alert] = env.live().values()
    env.ctx.alerts.resolve(alert.id, "gateway refunded the 0.1 by hand", env.clock())
    assert env.run(full=True).notifications == []
    env.append(order("o1", amount="1.0", fee="0.1", obtained="0.6"))
    [note] = env.run().notifications
    assert (note.event, note.revision) == ("opened", 1) and note.alert_id != alert.id


def test_refund_missing_is_swept_as_the_clock_moves(env: Env) -> None:
    env.append(order("o1", status="REFUNDED", update_time="2025-03-01T11:30:00", **GOOD))
    assert env.run().notifications == []  # refunded 30 minutes ago: within the 1 h grace
    # Grace counts from the later of update_time and when tally saw it (the clock, 12:00).
    env.clock.now += timedelta(hours=1, minutes=1)
    [note] = env.run().notifications  # no new snapshot: the sweep finds it
    assert (note.alert["rule"], note.alert["subject_id"]) == ("refund-missing", "o1")
    env.append(
        refund("o1", chain="BTC", currency="BTC", amount="0.9", network_fee="0.1", obtained="0.8")
    )
    resolved = env.run()
    assert [n.event for n in resolved.notifications] == ["resolved"]
    assert env.ctx.alerts.waiting() == {}


def test_full_and_incremental_agree(env: Env) -> None:
    env.append(
        order("o1", **SHORT),
        order("o2", **GOOD),
        tx("tx-o2", amount="1.0", fee="0.1", obtained="0.95", order_id="o2"),
        refund("o2", chain="BTC", currency="ETH", amount="0.9", network_fee="0.1", obtained="0.8"),
    )
    env.run()
    incremental = set(env.live())
    assert env.run(full=True).notifications == []
    assert (
        set(env.live())
        == incremental
        == {
            ("order", "o1", ""),
            # o2's obtained disagrees with its transaction's: the transaction's cause, one alert
            ("transaction", "tx-o2", ""),
            ("refund-vs-order", "o2", ""),
        }
    )
    assert env.live()[("transaction", "tx-o2", "")].related == ("o2",)


@pytest.mark.parametrize("window", [20, 5])
def test_windows_and_chunks_agree_with_full(env: Env, window: int) -> None:
    # Orders and their transactions land far apart (two feeds synced side by side). A window
    # that holds both judges each subject once, as a full run does, though a chunk holds only
    # three; a narrower window judges some twice, and ends with the same alerts.
    orders = [order(f"o{i}", **(SHORT if i % 3 == 0 else GOOD)) for i in range(7)]
    env.append(*orders)
    env.append(
        *[
            tx(f"tx-o{i}", amount="1.0", fee="0.1", obtained="0.9", order_id=f"o{i}")
            for i in range(7)
        ]
    )
    env.ctx = dataclasses.replace(env.ctx, window=window, chunk=3)
    incremental = env.run()
    assert incremental.counts["snapshots"] == 14
    assert incremental.cursor_to == env.store.head()[0]
    alerts = set(env.live())
    full = env.run(full=True)
    assert full.notifications == []
    assert set(env.live()) == alerts
    assert {a[1] for a in alerts if a[0] == "order"} == {"o0", "o3", "o6"}
    if window >= 14:
        assert incremental.counts["evaluated"] == full.counts["evaluated"]
    assert env.run().counts["snapshots"] == 0  # nothing new: the cursor is past every window


LONG_AGO = "2025-02-01T00:00:00Z"


def test_ebioro_payments_and_refunds_reconcile_through_their_plan(env: Env) -> None:
    paid = ebioro.payment_payload(id="pt_1", amount_paid=900)  # 9 USDC paid of 10 due
    refunded = ebioro.payment_payload(
        id="pt_2", status="refunded", updatedAt="2025-02-01T00:00:00Z"
    )
    env.append(
        RawRecord("ebioro", "payment", "pt_1", paid),
        RawRecord("ebioro", "payment", "pt_2", refunded),
    )
    env.run()  # refunded long ago, but first seen now: its refund may be a page away
    assert {subject for _, subject, _ in env.live()} == {"pt_1"}
    env.clock.now += timedelta(hours=1, seconds=1)  # the grace (1 h) from first sight
    env.run()
    found = {(rule, subject) for rule, subject, _ in env.live()}
    assert ("refunded-without-refund", "pt_2") in found
    assert {subject for _, subject in found} == {"pt_1", "pt_2"}
    settled = ebioro.payment_payload(id="pt_2", status="refunded", updatedAt=LONG_AGO)
    refund = ebioro.refund_payload("rf_1", value=500, payment=settled)
    env.append(RawRecord("ebioro", "refund", "rf_1", refund))
    report = env.run()
    assert ("refunded-without-refund", "pt_2") in {
        (n.alert["rule"], n.alert["subject_id"])
        for n in report.notifications
        if n.event == "resolved"
    }
    assert env.ctx.alerts.linked("ebioro", "payment-refund", ["pt_2"]) == {"pt_2": {"rf_1"}}


# --- meta-alerts


def test_meta_alerts_open_and_resolve_with_the_condition(env: Env) -> None:
    state = RunState(env.store.engine)
    state.mark_source("aurpay", T0, None)
    state.mark_source("aurpay", T0 + timedelta(minutes=20), "aurpay: HTTP 503")
    env.clock.now = T0 + timedelta(minutes=20)
    for run_id, rejected in (("run-1", 11), ("run-2", 10)):
        state.start_run(run_id, "aurpay", "full", env.clock())
        counts = {"pages": 1, "new_snapshots": 0, "journal_entries": 0, "rejected": rejected}
        state.record_item(run_id, "orders#1", now=env.clock(), **counts)
        state.finish_run(run_id, env.clock())
        env.clock.now += timedelta(seconds=1)
        if run_id == "run-1":
            opened = env.run().notifications
            assert {(n.alert["rule"], n.alert["subject_id"]) for n in opened} == {
                (SOURCE_UNREACHABLE, "aurpay"),
                (TOO_MANY_REJECTED, "aurpay"),
            }
            assert env.run().notifications == []  # still down: no new notification
    state.mark_source("aurpay", env.clock(), None)
    resolved = env.run().notifications
    assert sorted((n.alert["rule"], n.event) for n in resolved) == [
        (SOURCE_UNREACHABLE, "resolved"),
        (TOO_MANY_REJECTED, "resolved"),
    ]


# --- people and concurrency


def test_people_ack_and_resolve_with_notes(env: Env) -> None:
    env.append(order("o1", **SHORT))
    env.run()
    [alert] = env.live().values()
    acked = env.ctx.alerts.acknowledge(alert.id, "ana: checking with the gateway", env.clock())
    assert (acked.status, acked.revision) == (ACKNOWLEDGED, 1)
    done = env.ctx.alerts.resolve(alert.id, "ana: fee refunded off-platform", env.clock())
    assert (done.status, done.resolved_by) == (RESOLVED, "person")
    assert done.note == "ana: fee refunded off-platform"
    with pytest.raises(Exception, match="already resolved"):
        env.ctx.alerts.acknowledge(alert.id, "late", env.clock())
    with pytest.raises(Exception, match="no alert with id 999"):
        env.ctx.alerts.get(999)


def test_a_commit_planned_from_a_stale_cursor_is_refused(env: Env) -> None:
    env.append(order("o1", **SHORT))
    env.run()
    stale = env.ctx.alerts.cursor().version - 1
    with pytest.raises(ReconcileConflict):
        env.ctx.alerts.commit(Commit(stale, env.clock(), last_seq=0))
    assert env.ctx.alerts.cursor().last_seq > 0
    assert isinstance(env.ctx.alerts, AlertStore)


def test_the_alert_tables_match_their_migration(ledger_url: str) -> None:
    engine = make_engine(ledger_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        engine.dispose()
    ours = [d for d in diffs if any(name in repr(d) for name in ALERT_TABLES)]
    assert ours == []


def test_statuses_that_go_backwards_are_alerts_with_the_versions(env: Env) -> None:
    env.append(order("o1", status="SUCCESS", **GOOD), tx("tx-o1", **GOOD))
    env.append(order("o1", status="REFUNDED", **GOOD))
    env.append(
        refund(
            "o1",
            chain="BTC",
            currency="BTC",
            amount=Decimal("0.9"),
            network_fee=Decimal("0.1"),
            obtained=Decimal("0.8"),
        )
    )
    assert [(n.event, n.alert["rule"], n.alert["detail"]) for n in env.run().notifications] == []
    env.clock.now += timedelta(minutes=5)
    env.append(order("o1", status="SUCCESS", **GOOD))  # REFUNDED → SUCCESS
    report = env.run()
    assert [(n.event, n.alert["rule"]) for n in report.notifications] == [
        ("opened", "status-regression")
    ]
    alert = env.live()[("status-regression", "o1", "")]
    assert "REFUNDED (v2) back to SUCCESS (v3)" in alert.detail
    assert [v["status"] for v in alert.evidence[0]["versions"]] == ["REFUNDED", "SUCCESS"]
    # the refund paid out stays in the journal: nothing reversed it
    assert any(e.extra["object_kind"] == "refund" for e in env.store.iter_journal())

    env.append(
        refund(
            "o1",
            chain="BTC",
            currency="BTC",
            amount=Decimal("0.9"),
            network_fee=Decimal("0.2"),
            obtained=Decimal("0.7"),
        )
    )
    late = env.run()
    assert ("opened", "refund-after-reversal") in {
        (n.event, n.alert["rule"]) for n in late.notifications
    }


def test_a_refund_of_an_order_never_paid_and_an_unknown_commodity_alert(env: Env) -> None:
    env.append(order("o2", status="OVERDUE", amount="5", fee="0", obtained=None))
    env.append(
        refund(
            "o2",
            currency="BTC",
            amount=Decimal("0.5"),
            network_fee=Decimal("0"),
            obtained=Decimal("0.5"),
        )
    )
    env.append(order("o3", currency="NEWCOIN", amount="1.2345", fee="0.01", obtained="1.2245"))
    env.run()
    live = env.live()
    assert ("refund-unpaid", "o2", "") in live
    unknown = live[("unknown-precision", "NEWCOIN", "")]
    assert "4 decimals learned" in unknown.detail and "TALLY_CURRENCY_PRECISION" in unknown.detail
