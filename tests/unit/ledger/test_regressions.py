"""Statuses that go backwards are alerts with the versions as evidence: REFUNDED → SUCCESS
(Aurpay), refunded → paid (Ebioro), a refund of an object never paid, and a refund stored
after the object's refund was reversed. Forward moves are not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger.model import Snapshot
from ledger.reconcile.regressions import (
    REFUND_AFTER_REVERSAL,
    REFUND_UNPAID,
    STATUS_REGRESSION,
    refund_findings,
    status_regression,
)
from tests.ebioro_data import payment_payload
from tests.strategies import make_snapshot, order_payload
from worker.gateways.aurpay.lifecycle import LIFECYCLE as AURPAY
from worker.gateways.ebioro.lifecycle import LIFECYCLE as EBIORO


def orders(*statuses: str) -> list[Snapshot]:
    return [
        make_snapshot("order", order_payload(status=s, obtained="0.001"), version=i, seq=i * 10)
        for i, s in enumerate(statuses, start=1)
    ]


def test_refunded_back_to_success_is_a_regression_with_both_versions() -> None:
    (found,) = status_regression(AURPAY, orders("PENDING", "SUCCESS", "REFUNDED", "SUCCESS"))
    assert found.rule == STATUS_REGRESSION and found.snapshot_seqs == (30, 40)
    assert [v["status"] for v in found.evidence[0]["versions"]] == ["REFUNDED", "SUCCESS"]
    assert found.difference == Decimal("0.001") and found.currency == "BTC"
    assert "REFUNDED (v3) back to SUCCESS (v4)" in found.detail


def test_paid_back_to_unpaid_is_a_regression_but_forward_moves_are_not() -> None:
    assert status_regression(AURPAY, orders("SUCCESS", "OVERDUE"))
    for forward in (("PENDING", "OVERDUE"), ("PENDING", "SUCCESS", "REFUNDED"), ("TERMINATED",
                    "SUCCESS"), ("SUCCESS", "RESOLVED"), ("PENDING",)):  # fmt: skip
        assert status_regression(AURPAY, orders(*forward)) == []


def test_ebioro_refunded_back_to_paid() -> None:
    versions = [
        make_snapshot("payment", _payment(s), version=i, seq=i, external_id="pt_1")
        for i, s in enumerate(("open", "paid", "refunded", "paid"), start=1)
    ]
    (found,) = status_regression(EBIORO, versions)
    assert found.currency == "USDC"
    assert [v["status"] for v in found.evidence[0]["versions"]] == ["refunded", "paid"]


def _payment(status: str) -> dict[str, Any]:
    return payment_payload(status=status)


def test_a_refund_of_an_order_never_paid_and_after_its_refund_was_reversed() -> None:
    refund = make_snapshot("refund", {"order_id": "x", "amount": "1"}, seq=99, external_id="x")
    (unpaid,) = refund_findings(AURPAY, orders("PENDING", "OVERDUE"), refund, "BTC", Decimal(1))
    assert unpaid.rule == REFUND_UNPAID and unpaid.snapshot_seqs == (20, 99)
    history = orders("SUCCESS", "REFUNDED", "SUCCESS")
    (late,) = refund_findings(AURPAY, history, refund, "BTC", Decimal(1))
    assert late.rule == REFUND_AFTER_REVERSAL and late.snapshot_seqs == (30, 99)
    early = make_snapshot("refund", {"order_id": "x", "amount": "1"}, seq=25, external_id="x")
    assert refund_findings(AURPAY, history, early, "BTC", Decimal(1)) == []
    assert refund_findings(AURPAY, orders("SUCCESS", "REFUNDED"), refund, "BTC", Decimal(1)) == []
    assert refund_findings(AURPAY, [], refund, "BTC", Decimal(1)) == []  # order not stored yet
