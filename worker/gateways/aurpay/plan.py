"""Aurpay's reconcile plan (the table in ``worker.gateways.aurpay.rules``): an order re-runs with
its refund-info, a transaction with the orders naming it (link ``tx-order``), a refund-info with
its order; REFUNDED orders without refund-info wait for the ``refund-missing`` sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.model import Snapshot
from ledger.reconcile.plans import Evaluation, Loaded, SourcePlan, Terms, Work
from ledger.reconcile.rules import Rule
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
        orders = data.get(ORDER, work[ORDERS] | work[REFUNDS])
        refunds = data.get(REFUND, work[ORDERS] | work[REFUNDS])
        named = {tx for order in orders.values() if (tx := _tx_id(order))}
        txs = data.get(TRANSACTION, work[TRANSACTIONS] | named)
        out = Evaluation(loaded=data.by_kind)
        for order_id in sorted(work[ORDERS] & orders.keys()):
            order, refund = orders[order_id], refunds.get(order_id)
            tx_id = _tx_id(order)
            linked = txs.get(tx_id) if tx_id else None
            out.findings += evaluate_order(
                order, linked, refund, terms.precision, terms.now, terms.grace
            )
            out.judged(source, ORDER_RULES, order_id)
            if tx_id:
                out.links.add((source, TX_ORDER, tx_id, order_id))
            waiting = refund is None and status_of(order.payload) == "REFUNDED"
            (out.waiting if waiting else out.settled).add((source, order_id))
        for tx_id in sorted(work[TRANSACTIONS] & txs.keys()):
            out.findings += evaluate_transaction(txs[tx_id], terms.precision)
            out.judged(source, TRANSACTION_RULES, tx_id)
        for order_id in sorted(work[REFUNDS] & refunds.keys()):
            stored = orders.get(order_id)
            out.findings += evaluate_refund(refunds[order_id], stored, terms.precision)
            out.judged(source, REFUND_RULES if stored else (REFUND_RULE,), order_id)
        return out


def _tx_id(order: Snapshot) -> str | None:
    value = order.payload.get("tx_id")
    return value if isinstance(value, str) and value else None


def make_plan(source: str) -> SourcePlan:
    """The plan for the Aurpay source named ``source``."""
    return AurpayPlan(source)
