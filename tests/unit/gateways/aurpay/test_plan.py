"""Aurpay's reconcile plan over an in-memory lookup: what a change re-evaluates, and for which
source (one plan per Aurpay account)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.precision import PrecisionTable
from ledger.reconcile.plans import Evaluation, Loaded, Terms, Work
from tests.helpers.books import MemoryLookup
from tests.strategies import make_snapshot, order_payload, refund_payload, transaction_payload
from worker.gateways.aurpay.plan import make_plan

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TERMS = Terms(PrecisionTable(), NOW, timedelta(days=1))


def test_changes_expand_to_the_related_objects() -> None:
    plan = make_plan("aurpay")
    data = Loaded(MemoryLookup(links={"t1": {"o1"}, "t9": {"o9"}}), "aurpay")
    work = plan.for_changes(
        [("transaction", "t1"), ("refund", "o2"), ("order", "o3"), ("payment", "x")], data
    )
    assert work.source == "aurpay"
    assert work["orders"] == {"o1", "o2", "o3"}
    assert work["transactions"] == {"t1"}
    assert work["refunds"] == {"o2", "o3"}
    assert not plan.for_changes([], data)


def evaluate(source: str) -> tuple[Evaluation, MemoryLookup]:
    """A REFUNDED order o1 with its transaction t1, and refund-info o2 of an unstored order."""
    order = order_payload(order_id="o1", tx_id="t1", status="REFUNDED")
    lookup = MemoryLookup(
        make_snapshot("order", order, source=source),
        make_snapshot("transaction", transaction_payload(tx_id="t1"), seq=2, source=source),
        make_snapshot("refund", refund_payload(order_id="o2"), seq=3, source=source),
    )
    work = Work(source, {"orders": frozenset({"o1", "o404"}), "refunds": frozenset({"o1", "o2"})})
    return make_plan(source).evaluate(work, Loaded(lookup, source), TERMS), lookup


def test_evaluation_reports_scopes_and_index_facts() -> None:
    found, lookup = evaluate("aurpay")
    assert found.scopes == {
        ("aurpay", "order", "o1"),
        ("aurpay", "refund-missing", "o1"),
        ("aurpay", "status-regression", "o1"),
        ("aurpay", "refund", "o2"),  # no order stored: refund-vs-order is not judged
        ("aurpay", "unknown-precision", "BTC"),  # judged per commodity of the orders judged
    }
    assert found.links == {("aurpay", "tx-order", "t1", "o1")}
    assert found.waiting == {("aurpay", "o1")}
    assert [(f.rule, f.subject_id) for f in found.findings] == [("refund-missing", "o1")]
    assert all(len(set(ids)) == len(ids) for _, ids in lookup.reads)  # nothing read twice


def test_a_second_account_is_judged_under_its_own_source_with_the_same_rule_ids() -> None:
    default, _ = evaluate("aurpay")
    eu, _ = evaluate("aurpay-eu")
    assert make_plan("aurpay-eu").source == "aurpay-eu"
    assert eu.scopes == {("aurpay-eu", rule, subject) for _, rule, subject in default.scopes}
    assert eu.links == {("aurpay-eu", "tx-order", "t1", "o1")}
    assert eu.waiting == {("aurpay-eu", "o1")}
    assert [(f.source, f.rule) for f in eu.findings] == [("aurpay-eu", "refund-missing")]


def test_every_judged_rule_is_in_the_plans_rulebook() -> None:
    found, _ = evaluate("aurpay")
    assert {rule for _, rule, _ in found.scopes} <= set(make_plan("aurpay").rules)
