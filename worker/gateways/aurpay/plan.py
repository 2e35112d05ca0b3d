"""Aurpay's reconcile plan (the table in ``worker.gateways.aurpay.rules``): an order re-runs with
its refund-info, a transaction with the orders naming it (link ``tx-order``), a refund-info with
its order; REFUNDED orders without refund-info wait for the ``refund-missing`` sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from ledger.model import Snapshot
from ledger.reconcile.plans import Evaluation, Loaded, SourcePlan, Terms, Work
from ledger.reconcile.rules import Precisions, Rule, amount_or_none, code_or_none, for_rule
from ledger.reconcile.unknown import UNKNOWN_PRECISION
from worker.gateways.aurpay.lifecycle import (
    refund_after_reversal_rule,
    refund_unpaid_rule,
    status_regression_rule,
    unknown_precision_rule,
)
from worker.gateways.aurpay.postings import status_of
from worker.gateways.aurpay.rules import (
    ORDER_RULES,
    REFUND_RULES,
    RULES,
    TRANSACTION_RULES,
    evaluate_order,
    evaluate_refund,
    evaluate_transaction,
)
from worker.gateways.aurpay.rules import REFUND as REFUND_RULE

ORDER, TRANSACTION, REFUND = "order", "transaction", "refund"  # kinds (refund = refund-info)
ORDERS, TRANSACTIONS, REFUNDS = "orders", "transactions", "refunds"
ROLE = {ORDER: ORDERS, TRANSACTION: TRANSACTIONS, REFUND: REFUNDS}
TX_ORDER = "tx-order"


class AurpayPlan:
    """The plan of one Aurpay source (account), named ``source``."""

    kinds: tuple[str, ...] = (ORDER, TRANSACTION, REFUND)
    rules: Mapping[str, Rule] = RULES

    def __init__(self, source: str) -> None:
        self.source = source

    def for_changes(self, changed: Sequence[tuple[str, str]], data: Loaded) -> Work:
        by_kind: dict[str, set[str]] = {kind: set() for kind in self.kinds}
        for kind, external_id in changed:
            if kind in by_kind:
                by_kind[kind].add(external_id)
        txs = sorted(by_kind[TRANSACTION])
        linked = data.linked(TX_ORDER, txs)
        naming = {order_id for ids in linked.values() for order_id in ids}
        return Work(
            self.source,
            {
                ORDERS: frozenset(by_kind[ORDER] | by_kind[REFUND] | naming),
                TRANSACTIONS: frozenset(by_kind[TRANSACTION]),
                REFUNDS: frozenset(by_kind[REFUND] | by_kind[ORDER]),
            },
        )

    def for_kind(self, kind: str, ids: frozenset[str]) -> Work:
        return Work(self.source, {ROLE[kind]: ids})

    def for_sweep(self, ids: frozenset[str]) -> Work:
        return Work(self.source, {ORDERS: ids})

    def evaluate(self, work: Work, data: Loaded, terms: Terms) -> Evaluation:
        """Every id with a stored snapshot is judged; a refund-info whose order is not stored
        yet gets only the ``refund`` rule (its ``refund-vs-order`` alert stays as it is)."""
        source = work.source
        judging = terms.judging(self.rules)
        orders = data.get(ORDER, work[ORDERS] | work[REFUNDS])
        refunds = data.get(REFUND, work[ORDERS] | work[REFUNDS])
        named = {tx for order in orders.values() if (tx := _tx_id(order))}
        txs = data.get(TRANSACTION, work[TRANSACTIONS] | named)
        out = Evaluation(loaded=data.by_kind)
        judged_orders = work[ORDERS] & orders.keys()
        judged_refunds = work[REFUNDS] & refunds.keys()
        history = data.versions(ORDER, judged_orders | judged_refunds)
        for order_id in sorted(judged_orders):
            order, refund = orders[order_id], refunds.get(order_id)
            tx_id = _tx_id(order)
            linked = txs.get(tx_id) if tx_id else None
            out.findings += evaluate_order(order, linked, refund, judging, terms.now, terms.grace)
            out.findings += status_regression_rule(history.get(order_id, []))
            out.judged(source, ORDER_RULES, order_id)
            if tx_id:
                out.links.add((source, TX_ORDER, tx_id, order_id))
            waiting = refund is None and status_of(order.payload) == "REFUNDED"
            (out.waiting if waiting else out.settled).add((source, order_id))
        for tx_id in sorted(work[TRANSACTIONS] & txs.keys()):
            out.findings += evaluate_transaction(txs[tx_id], judging)
            out.judged(source, TRANSACTION_RULES, tx_id)
        for order_id in sorted(judged_refunds):
            stored, refund = orders.get(order_id), refunds[order_id]
            out.findings += evaluate_refund(refund, stored, judging)
            currency = code_or_none(refund.payload, "currency") or "?"
            amount = amount_or_none(refund.payload, "amount") or Decimal(0)
            versions = history.get(order_id, [])
            out.findings += refund_unpaid_rule(versions, refund, currency, amount)
            out.findings += refund_after_reversal_rule(versions, refund, currency, amount)
            out.judged(source, REFUND_RULES if stored else (REFUND_RULE,), order_id)
        self._judge_precision(out, [orders[i] for i in judged_orders], judging)
        return out

    def _judge_precision(
        self, out: Evaluation, orders: list[Snapshot], judging: Precisions
    ) -> None:
        """``unknown-precision``, once per commodity of the judged orders."""
        out.findings += unknown_precision_rule(orders, for_rule(judging, UNKNOWN_PRECISION))
        for currency in sorted({c for o in orders if (c := code_or_none(o.payload, "currency"))}):
            out.judged(self.source, (UNKNOWN_PRECISION,), currency)


def _tx_id(order: Snapshot) -> str | None:
    value = order.payload.get("tx_id")
    return value if isinstance(value, str) and value else None


def make_plan(source: str) -> SourcePlan:
    """The plan for the Aurpay source named ``source``."""
    return AurpayPlan(source)
