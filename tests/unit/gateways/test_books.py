"""Composing gateways' books for named sources: one gateway may serve several sources."""

from __future__ import annotations

import pytest

from ledger.journal.derive import Derived
from ledger.model import Snapshot
from ledger.precision import PrecisionTable
from worker.gateways.aurpay.plan import make_plan as aurpay_plan
from worker.gateways.aurpay.postings import DERIVERS as AURPAY
from worker.gateways.books import deriver_table, plan_table
from worker.gateways.ebioro.plan import make_plan as ebioro_plan
from worker.gateways.ebioro.postings import DERIVERS as EBIORO


def test_the_deriver_table_is_keyed_by_source_and_kind() -> None:
    table = deriver_table({"aurpay": AURPAY, "aurpay-eu": AURPAY, "ebioro": EBIORO})
    assert set(table) == {
        *(("aurpay", kind) for kind in AURPAY),
        *(("aurpay-eu", kind) for kind in AURPAY),
        ("ebioro", "payment"),
        ("ebioro", "refund"),
    }
    assert table[("aurpay-eu", "order")] is AURPAY["order"]
    assert table[("ebioro", "refund")] is EBIORO["refund"]  # not Aurpay's refund


def test_the_plan_table_names_each_plan_after_its_source() -> None:
    plans = plan_table({"aurpay": aurpay_plan, "aurpay-eu": aurpay_plan, "ebioro": ebioro_plan})
    assert {source: plan.source for source, plan in plans.items()} == {
        "aurpay": "aurpay",
        "aurpay-eu": "aurpay-eu",
        "ebioro": "ebioro",
    }
    assert plans["aurpay"].rules is plans["aurpay-eu"].rules  # one gateway, one rulebook


def test_a_plan_that_misnames_its_source_is_refused() -> None:
    with pytest.raises(ValueError, match="calls itself 'aurpay'"):
        plan_table({"aurpay-eu": lambda source: aurpay_plan("aurpay")})


def test_a_source_whose_gateway_derives_nothing_adds_no_rows() -> None:
    def nothing(snapshot: Snapshot, precision: PrecisionTable) -> Derived | None:
        return None

    assert deriver_table({"x": {"a": nothing}, "y": {}}) == {("x", "a"): nothing}
