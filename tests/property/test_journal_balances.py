"""Invariants of the journal and the rules over random Aurpay data at 6, 8 and 18 decimals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal, localcontext
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.journal import accounts
from ledger.journal.derive import plan_entries
from ledger.model import JournalEntry, Posting, Snapshot
from ledger.precision import PrecisionTable
from tests.helpers.books import DERIVERS
from tests.strategies import (
    OBSERVED_AT,
    PAID,
    Coin,
    coins,
    consistent_groups,
    make_snapshot,
    orders,
    refunds,
)
from worker.gateways.aurpay.rules import evaluate_order, evaluate_refund, evaluate_transaction

PRECISION = PrecisionTable()
FINER_THAN_STORE = 21  # the journal itself must stay exact even past the store's 18 places


def net(postings: Iterable[Posting]) -> Counter[tuple[str, str]]:
    """Sum per (account, currency), zero totals dropped, with no rounding at any size."""
    totals: Counter[tuple[str, str]] = Counter()
    with localcontext(prec=500):
        for p in postings:
            totals[(p.account, p.currency)] += p.amount  # type: ignore[assignment]
    return Counter({k: v for k, v in totals.items() if v != 0})


def per_currency(entry: JournalEntry) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    with localcontext(prec=500):
        for p in entry.postings:
            totals[p.currency] = totals.get(p.currency, Decimal(0)) + p.amount
    return totals


class ObjectLedger:
    """A plain model of the store for one object: entries in order, effective = last unless a
    reversal."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []

    @property
    def effective(self) -> JournalEntry | None:
        last = self.entries[-1] if self.entries else None
        return None if last is None or last.reverses_key is not None else last

    def apply(self, snapshot: Snapshot) -> list[JournalEntry]:
        planned = plan_entries(snapshot, self.effective, PRECISION, DERIVERS)
        keys = {e.key for e in self.entries}
        assert not keys & {e.key for e in planned}, "a planned key was already used"
        self.entries.extend(planned)
        return planned


payloads = st.one_of(
    orders(max_places=FINER_THAN_STORE).map(lambda p: ("order", p)),
    refunds(max_places=FINER_THAN_STORE).map(lambda p: ("refund", p)),
)


@given(payloads)
def test_every_planned_entry_balances_per_currency(kind_payload: tuple[str, Any]) -> None:
    snapshot = make_snapshot(*kind_payload)
    for entry in plan_entries(snapshot, None, PRECISION, DERIVERS):
        assert entry.postings
        assert all(p.amount != 0 for p in entry.postings)
        assert set(per_currency(entry).values()) == {Decimal(0)}


@given(payloads)
def test_planning_is_deterministic_and_idempotent(kind_payload: tuple[str, Any]) -> None:
    snapshot = make_snapshot(*kind_payload)
    first = plan_entries(snapshot, None, PRECISION, DERIVERS)
    assert plan_entries(snapshot, None, PRECISION, DERIVERS) == first
    ledger = ObjectLedger()
    ledger.apply(snapshot)
    assert ledger.apply(snapshot) == []  # replaying the same version appends nothing


@st.composite
def order_versions(draw: st.DrawFn) -> list[Snapshot]:
    """PENDING → SUCCESS → REFUNDED, then the same order with a corrected amount."""
    coin: Coin = draw(coins)
    paid = draw(orders(coin, statuses=("SUCCESS",)))
    corrected = draw(orders(coin, statuses=("REFUNDED",)).filter(lambda o: o != paid))
    versions = [
        {**paid, "status": "PENDING", "obtained": None},
        paid,
        {**paid, "status": "REFUNDED", "update_time": "2025-02-07T00:00:00"},
        {**corrected, "order_id": paid["order_id"]},
    ]
    return [make_snapshot("order", p, version=i) for i, p in enumerate(versions, start=1)]


@given(order_versions())
def test_a_corrected_version_reverses_and_reposts(versions: list[Snapshot]) -> None:
    ledger = ObjectLedger()
    pending, success, refunded, corrected = (ledger.apply(v) for v in versions)
    assert pending == [] and refunded == []  # PENDING posts nothing; REFUNDED keeps the sale
    assert [e.key for e in success] == [f"aurpay:order:{versions[0].external_id}:v2"]
    latest = plan_entries(versions[-1], None, PRECISION, DERIVERS)
    if net(latest[0].postings) == net(success[0].postings):
        assert corrected == []
    else:
        reversal, new = corrected
        assert reversal.reverses_key == success[0].key
        assert reversal.key == f"{success[0].key}:reversal@v4"
        assert new.key.endswith(":v4")
    assert net(p for e in ledger.entries for p in e.postings) == net(latest[0].postings)


@given(st.lists(orders(statuses=("SUCCESS", "PENDING", "REFUNDED")), min_size=1, max_size=6))
def test_net_effect_of_any_version_history_is_the_latest_version(history: list[Any]) -> None:
    order_id = history[0]["order_id"]
    ledger = ObjectLedger()
    snapshots = [
        make_snapshot("order", {**p, "order_id": order_id}, version=i)
        for i, p in enumerate(history, start=1)
    ]
    for snapshot in snapshots:
        ledger.apply(snapshot)
    latest = plan_entries(snapshots[-1], None, PRECISION, DERIVERS)
    expected = net(p for e in latest for p in e.postings)
    assert net(p for e in ledger.entries for p in e.postings) == expected


@given(consistent_groups())
def test_reconcile_consistent_data_finds_nothing(group: tuple[Any, Any, Any]) -> None:
    order, tx, refund = group
    now, grace = OBSERVED_AT + timedelta(days=30), timedelta(days=1)
    assert evaluate_order(order, tx, refund, PRECISION, now, grace) == []
    assert evaluate_transaction(tx, PRECISION) == []
    if refund is not None:
        assert evaluate_refund(refund, order, PRECISION) == []
    for snapshot in (order, refund):
        if snapshot is not None:
            for entry in plan_entries(snapshot, None, PRECISION, DERIVERS):
                assert not any(accounts.is_suspense(p.account) for p in entry.postings)


@given(orders(statuses=PAID))
def test_suspense_holds_exactly_what_the_order_rule_reports(payload: Any) -> None:
    snapshot = make_snapshot("order", payload)
    suspense = [
        p.amount
        for e in plan_entries(snapshot, None, PRECISION, DERIVERS)
        for p in e.postings
        # beyond tolerance: short → suspense (accepted when RESOLVED), over → a deposit owed
        # back to the customer
        if accounts.is_suspense(p.account)
        or p.account in (accounts.ACCEPTED_UNDERPAYMENTS, accounts.deposits("aurpay"))
    ]
    found = evaluate_order(snapshot, None, None, PRECISION, OBSERVED_AT, timedelta(days=365))
    assert suspense == [f.difference for f in found if f.rule == "order"]
