"""Journal derivation with injected derivers: the (source, kind) table, reversals, balance."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.journal.derive import (
    Derived,
    UnbalancedEntry,
    UnpostableSnapshot,
    check_balanced,
    journal_planner,
    plan_entries,
)
from ledger.journal.postings import Deriver
from ledger.model import JournalEntry, Posting, Snapshot
from ledger.precision import PrecisionTable
from tests.strategies import OBSERVED_AT, make_snapshot

PRECISION = PrecisionTable()
D = Decimal


def postings(*legs: tuple[str, str, str]) -> tuple[Posting, ...]:
    return tuple(Posting(account, currency, D(amount)) for account, currency, amount in legs)


def toy(snapshot: Snapshot, precision: PrecisionTable, *_: object) -> Derived | None:
    """``amount`` in, to the source's own balance; amount 0 posts nothing."""
    amount = D(str(snapshot.payload["amount"]))
    if amount == 0:
        return None
    legs = postings(("income:sales", "BTC", str(-amount)))
    legs += (Posting(f"assets:{snapshot.source}:BTC", "BTC", amount),)
    return Derived(legs, OBSERVED_AT, f"toy {snapshot.external_id}")


TABLE: dict[tuple[str, str], Deriver] = {("shop", "order"): toy, ("shop-eu", "order"): toy}


def order(amount: str, *, source: str = "shop", version: int = 1) -> Snapshot:
    payload = {"order_id": "o1", "amount": amount}
    return make_snapshot("order", payload, source=source, version=version, seq=version)


def test_the_deriver_is_looked_up_by_source_and_kind() -> None:
    (entry,) = plan_entries(order("2"), None, PRECISION, TABLE)
    assert entry.key == "shop:order:o1:v1" and entry.description == "toy o1"
    (eu,) = plan_entries(order("2", source="shop-eu"), None, PRECISION, TABLE)
    assert eu.key == "shop-eu:order:o1:v1"
    assert eu.postings[-1] == Posting("assets:shop-eu:BTC", "BTC", D(2))


@pytest.mark.parametrize(
    ("source", "kind"), [("shop", "refund"), ("other", "order"), ("shop-us", "order")]
)
def test_no_deriver_for_the_source_and_kind_is_unpostable(source: str, kind: str) -> None:
    snapshot = make_snapshot(kind, {"order_id": "o1", "amount": "1"}, source=source)
    with pytest.raises(UnpostableSnapshot, match=f"no journal deriver for {source}/{kind}"):
        plan_entries(snapshot, None, PRECISION, TABLE)
    with pytest.raises(UnpostableSnapshot):
        plan_entries(snapshot, None, PRECISION, {})


def test_a_changed_version_reverses_then_reposts_and_same_postings_plan_nothing() -> None:
    (first,) = plan_entries(order("2"), None, PRECISION, TABLE)
    assert plan_entries(order("2.00", version=2), first, PRECISION, TABLE) == []
    reversal, new = plan_entries(order("3", version=3), first, PRECISION, TABLE)
    assert reversal.key == "shop:order:o1:v1:reversal@v3" and reversal.reverses_key == first.key
    assert reversal.postings == tuple(
        Posting(p.account, p.currency, -p.amount) for p in first.postings
    )
    assert new.key == "shop:order:o1:v3"
    (only_reversal,) = plan_entries(order("0", version=4), new, PRECISION, TABLE)
    assert only_reversal.reverses_key == new.key


def test_the_planner_is_bound_to_a_copy_of_the_table() -> None:
    table = dict(TABLE)
    planner = journal_planner(table)
    table.clear()  # the caller's later edits do not reach the store's planner
    (entry,) = planner(order("2"), None, PRECISION)
    assert entry.key == "shop:order:o1:v1"


def test_an_unbalanced_deriver_is_a_bug_caught_before_the_store() -> None:
    def lopsided(snapshot: Snapshot, precision: PrecisionTable, *_: object) -> Derived:
        return Derived(postings(("a", "BTC", "1")), OBSERVED_AT, "lopsided")

    with pytest.raises(UnbalancedEntry, match="BTC 1"):
        plan_entries(order("1"), None, PRECISION, {("shop", "order"): lopsided})


def test_check_balanced_refuses_unbalanced_and_empty_entries() -> None:
    entry = JournalEntry("k", OBSERVED_AT, "d", "shop", "1", 1, postings(("a", "BTC", "1")))
    with pytest.raises(UnbalancedEntry, match="BTC 1"):
        check_balanced(entry)
    two_currencies = postings(("a", "BTC", "1"), ("b", "ETH", "-1"))
    with pytest.raises(UnbalancedEntry):
        check_balanced(JournalEntry("k", OBSERVED_AT, "d", "shop", "1", 1, two_currencies))
    with pytest.raises(UnbalancedEntry, match="no postings"):
        check_balanced(JournalEntry("k", OBSERVED_AT, "d", "shop", "1", 1, ()))
