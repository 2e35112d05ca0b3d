"""Ebioro's reconcile plan over an in-memory lookup: what a change re-evaluates, and for which
source (one plan per Ebioro account)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from ledger.model import Snapshot
from ledger.precision import PrecisionTable
from ledger.reconcile.plans import Evaluation, Loaded, Terms
from tests import ebioro_data as ebioro
from tests.helpers.books import MemoryLookup
from worker.gateways.ebioro.plan import make_plan
from worker.gateways.ebioro.rules import PAYMENT_RULES, REFUND_MISSING, REFUND_RULES

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TERMS = Terms(PrecisionTable(), NOW, timedelta(days=1))


def refund_change(source: str) -> Evaluation:
    """Payment pt_1 marked refunded, with two failed refunds; rf_2 just changed."""

    def stored(snapshot: Snapshot) -> Snapshot:
        return dataclasses.replace(snapshot, source=source)

    payment = stored(ebioro.snapshot(ebioro.payment_payload(id="pt_1", status="refunded")))
    old, new = (
        stored(
            ebioro.snapshot(
                ebioro.refund_payload(rid, status="failed", payment={"id": "pt_1"}), seq=9
            )
        )
        for rid in ("rf_1", "rf_2")
    )
    data = Loaded(MemoryLookup(payment, old, new, links={"pt_1": {"rf_1"}}), source)
    plan = make_plan(source)
    work = plan.for_changes([("refund", "rf_2")], data)
    assert work.source == source
    return plan.evaluate(work, data, TERMS)


def test_a_refund_change_re_judges_its_payment_with_all_its_refunds() -> None:
    found = refund_change("ebioro")
    assert found.scopes == {("ebioro", rule, "pt_1") for rule in PAYMENT_RULES} | {
        ("ebioro", rule, "rf_2")
        for rule in REFUND_RULES  # rf_1 did not change
    }
    assert found.links == {("ebioro", "payment-refund", "pt_1", "rf_2")}
    assert found.waiting == {("ebioro", "pt_1")}  # both refunds failed: still owed a refund
    assert (REFUND_MISSING, "pt_1") in {(f.rule, f.subject_id) for f in found.findings}


def test_a_second_account_is_judged_under_its_own_source_with_the_same_rule_ids() -> None:
    default, other = refund_change("ebioro"), refund_change("ebioro-b")
    assert other.scopes == {("ebioro-b", rule, subject) for _, rule, subject in default.scopes}
    assert other.links == {("ebioro-b", "payment-refund", "pt_1", "rf_2")}
    assert other.waiting == {("ebioro-b", "pt_1")}
    assert {f.source for f in other.findings} == {"ebioro-b"}
    assert sorted(f.rule for f in other.findings) == sorted(f.rule for f in default.findings)


def test_every_judged_rule_is_in_the_plans_rulebook() -> None:
    found = refund_change("ebioro")
    assert {rule for _, rule, _ in found.scopes} <= set(make_plan("ebioro").rules)
