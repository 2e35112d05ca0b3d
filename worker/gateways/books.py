"""Composing gateways' books for named sources: the deriver and plan tables the ledger is given."""

from __future__ import annotations

from collections.abc import Mapping

from ledger.journal.postings import Deriver
from ledger.reconcile.plans import PlanMaker, SourcePlan


def deriver_table(
    derivers_by_source: Mapping[str, Mapping[str, Deriver]],
) -> dict[tuple[str, str], Deriver]:
    """``{(source, kind): deriver}`` from each source's gateway ``DERIVERS`` (kind → deriver);
    one gateway may serve several sources (e.g. ``aurpay`` and ``aurpay-eu``)."""
    return {
        (source, kind): deriver
        for source, derivers in derivers_by_source.items()
        for kind, deriver in derivers.items()
    }


def plan_table(plan_makers_by_source: Mapping[str, PlanMaker]) -> dict[str, SourcePlan]:
    """``{source: plan}``: each source's gateway ``make_plan`` applied to the source's name."""
    plans = {source: make(source) for source, make in plan_makers_by_source.items()}
    for source, plan in plans.items():
        if plan.source != source:  # a plan judging under another name would misfile alerts
            raise ValueError(f"the plan made for {source!r} calls itself {plan.source!r}")
    return plans
