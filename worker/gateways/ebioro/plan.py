"""Ebioro's reconcile plan (the table in ``worker.gateways.ebioro.rules``): a payment re-runs
with its refunds, a refund with its payment and that payment's other refunds (link
``payment-refund``, from the payment id each refund embeds); payments marked refunded with no
live refund wait for the ``refunded-without-refund`` sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from ledger.model import Snapshot
from ledger.reconcile.plans import Evaluation, Loaded, SourcePlan, Terms, Work
from ledger.reconcile.rules import Rule
from worker.gateways.ebioro.lifecycle import (
    refund_after_reversal_rule,
    refund_unpaid_rule,
    status_regression_rule,
)
from worker.gateways.ebioro.postings import (
    marked_refunded,
    refund_amount,
    refund_payment_id,
    status_of,
)
from worker.gateways.ebioro.rules import (
    PAYMENT_RULES,
    REFUND_RULES,
    RULES,
    evaluate_payment,
    evaluate_refund,
)

PAYMENT, REFUND = "payment", "refund"
PAYMENTS, REFUNDS = "payments", "refunds"
PAYMENT_REFUND = "payment-refund"


class EbioroPlan:
    """The plan of one Ebioro source (account), named ``source``."""

    kinds: tuple[str, ...] = (PAYMENT, REFUND)
    rules: Mapping[str, Rule] = RULES

    def __init__(self, source: str) -> None:
        self.source = source

    def for_changes(self, changed: Sequence[tuple[str, str]], data: Loaded) -> Work:
        # A refund's payment is known only from its payload: ``evaluate`` follows it.
        payments = frozenset(i for kind, i in changed if kind == PAYMENT)
        refunds = frozenset(i for kind, i in changed if kind == REFUND)
        return Work(self.source, {PAYMENTS: payments, REFUNDS: refunds})

    def for_kind(self, kind: str, ids: frozenset[str]) -> Work:
        return Work(self.source, {PAYMENTS if kind == PAYMENT else REFUNDS: ids})

    def for_sweep(self, ids: frozenset[str]) -> Work:
        return Work(self.source, {PAYMENTS: ids})

    def evaluate(self, work: Work, data: Loaded, terms: Terms) -> Evaluation:
        """Payments in ``work`` and those of its refunds are judged with all their refunds;
        refunds in ``work`` and those of its payments are judged with their payment."""
        source = work.source
        judging = terms.judging(self.rules)
        changed_refunds = data.get(REFUND, work[REFUNDS])
        payment_ids = set(work[PAYMENTS]) | {
            pid for r in changed_refunds.values() if (pid := refund_payment_id(r.payload))
        }
        payments = data.get(PAYMENT, payment_ids)
        linked = data.linked(PAYMENT_REFUND, payment_ids)
        sibling_ids = {rid for ids in linked.values() for rid in ids}
        refunds = data.get(REFUND, sibling_ids | changed_refunds.keys())
        refunds_of: dict[str, list[Snapshot]] = {}
        for refund in refunds.values():
            pid = refund_payment_id(refund.payload)
            if pid:
                refunds_of.setdefault(pid, []).append(refund)
        out = Evaluation(loaded=data.by_kind)
        history = data.versions(PAYMENT, payments.keys())
        for pid in sorted(payments):
            mine = sorted(refunds_of.get(pid, []), key=lambda r: r.external_id)
            out.findings += evaluate_payment(payments[pid], mine, judging, terms.now, terms.grace)
            out.findings += status_regression_rule(history.get(pid, []))
            out.judged(source, PAYMENT_RULES, pid)
            waiting = marked_refunded(payments[pid].payload) and all(
                status_of(r.payload) == "failed" for r in mine
            )
            (out.waiting if waiting else out.settled).add((source, pid))
        judged_refunds = set(changed_refunds) | {
            r.external_id for pid in work[PAYMENTS] for r in refunds_of.get(pid, [])
        }
        for rid in sorted(judged_refunds):
            refund = refunds[rid]
            pid = refund_payment_id(refund.payload)
            out.findings += evaluate_refund(refund, payments.get(pid) if pid else None, judging)
            if pid and status_of(refund.payload) == "refunded":
                code, amount = refund_amount(refund.payload)
                versions, money = history.get(pid, []), amount or Decimal(0)
                out.findings += refund_unpaid_rule(versions, refund, code or "?", money)
                out.findings += refund_after_reversal_rule(versions, refund, code or "?", money)
            out.judged(source, REFUND_RULES, rid)
            if pid:
                out.links.add((source, PAYMENT_REFUND, pid, rid))
        return out


def make_plan(source: str) -> SourcePlan:
    """The plan for the Ebioro source named ``source``."""
    return EbioroPlan(source)
