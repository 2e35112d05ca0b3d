"""Aurpay's reconcile plan (the table in ``ledger.reconcile.rules.aurpay``): an order re-runs with
its
refund-info, a transaction with the orders naming it (link ``tx-order``), a refund-info with its
order; REFUNDED orders without refund-info wait for the ``refund-missing`` sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.journal.postings.aurpay import SOURCE, status_of
from ledger.model import Snapshot
from ledger.reconcile.plans import Evaluation, Loaded, Terms, Work, register_plan
from ledger.reconcile.rules.aurpay import RVO, evaluate_order, evaluate_refund, evaluate_transaction

ORDER, TRANSACTION, REFUND = "order", "transaction", "refund"
ORDERS, TRANSACTIONS, REFUNDS = "orders", "transactions", "refunds"
ROLE = {ORDER: ORDERS, TRANSACTION: TRANSACTIONS, REFUND: REFUNDS}
TX_ORDER = "tx-order"
ORDER_RULES = ("order", "refund-missing")


class AurpayPlan:
    source = SOURCE
    kinds = (ORDER, TRANSACTION, REFUND)

    def for_changes(self, changed: Sequence[tuple[str, str]], data: Loaded) -> Work:
        by_kind: dict[str, set[str]] = {kind: set() for kind in self.kinds}
        for kind, external_id in changed:
            if kind in by_kind:
                by_kind[kind].add(external_id)
        txs = sorted(by_kind[TRANSACTION])
        linked = data.linked(TX_ORDER, txs)
        naming = {order_id for ids in linked.values() for order_id in ids}
        return Work(
            SOURCE,
            {
                ORDERS: frozenset(by_kind[ORDER] | by_kind[REFUND] | naming),
                TRANSACTIONS: frozenset(by_kind[TRANSACTION]),
                REFUNDS: frozenset(by_kind[REFUND] | by_kind[ORDER]),
            },
        )

    def for_kind(self, kind: str, ids: frozenset[str]) -> Work:
        return Work(SOURCE, {ROLE[kind]: ids})

    def for_sweep(self, ids: frozenset[str]) -> Work:
        return Work(SOURCE, {ORDERS: ids})

    def evaluate(self, work: Work, data: Loaded, terms: Terms) -> Evaluation:
        """Every id with a stored snapshot is judged; a refund-info whose order is not stored
        yet gets only the ``refund`` rule (its ``refund-vs-order`` alert stays as it is)."""
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
            out.judged(SOURCE, ORDER_RULES, order_id)
            if tx_id:
                out.links.add((SOURCE, TX_ORDER, tx_id, order_id))
            waiting = refund is None and status_of(order.payload) == "REFUNDED"
            (out.waiting if waiting else out.settled).add((SOURCE, order_id))
        for tx_id in sorted(work[TRANSACTIONS] & txs.keys()):
            out.findings += evaluate_transaction(txs[tx_id], terms.precision)
            out.judged(SOURCE, ("transaction",), tx_id)
        for order_id in sorted(work[REFUNDS] & refunds.keys()):
            order = orders.get(order_id)
            out.findings += evaluate_refund(refunds[order_id], order, terms.precision)
            out.judged(SOURCE, ("refund", RVO) if order else ("refund",), order_id)
        return out


def _tx_id(order: Snapshot) -> str | None:
    value = order.payload.get("tx_id")
    return value if isinstance(value, str) and value else None


register_plan(AurpayPlan())
