"""Which rules to re-run when objects change, and running them: pure, over loaded snapshots.

``work_from_changes`` turns changed objects into ``Work`` (following the table in
``ledger.rules.aurpay``); ``Work.needs`` says which latest snapshots to load; ``evaluate`` runs
the rules and reports findings, the scopes it covered (so alerts no longer found resolve), and
the facts reconcile keeps as indexes (transaction → orders, refunded orders awaiting refund-info).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ledger.alerts import Scope
from ledger.model import Snapshot
from ledger.postings.aurpay import SOURCE, status_of
from ledger.precision import PrecisionTable
from ledger.rules import Finding
from ledger.rules.aurpay import RVO, evaluate_order, evaluate_refund, evaluate_transaction

ORDER, TRANSACTION, REFUND = "order", "transaction", "refund"
KINDS = (ORDER, TRANSACTION, REFUND)


@dataclass(frozen=True)
class Work:
    """Ids to evaluate: ``orders`` with rules order + refund-missing, ``transactions`` with
    transaction, ``refunds`` with refund + refund-vs-order (refund-info ids are order ids)."""

    source: str = SOURCE
    orders: frozenset[str] = frozenset()
    transactions: frozenset[str] = frozenset()
    refunds: frozenset[str] = frozenset()

    @classmethod
    def of_kind(cls, source: str, kind: str, ids: frozenset[str]) -> Work:
        """All objects of one kind (a page of a full reconcile)."""
        empty: frozenset[str] = frozenset()
        return cls(
            source,
            orders=ids if kind == ORDER else empty,
            transactions=ids if kind == TRANSACTION else empty,
            refunds=ids if kind == REFUND else empty,
        )

    def __bool__(self) -> bool:
        return bool(self.orders or self.transactions or self.refunds)

    def needs(self, loaded_orders: Mapping[str, Snapshot] | None = None) -> dict[str, set[str]]:
        """kind → ids to load. Transactions named by orders are known once orders are loaded,
        so call once without ``loaded_orders`` and again with them."""
        orders = set(self.orders | self.refunds)
        transactions = set(self.transactions)
        if loaded_orders is not None:
            transactions |= {tx for o in loaded_orders.values() if (tx := _tx_id(o))}
        return {ORDER: orders, TRANSACTION: transactions, REFUND: set(self.orders | self.refunds)}


def work_from_changes(
    source: str,
    changed: Iterable[tuple[str, str]],
    orders_of_tx: Mapping[str, Iterable[str]],
) -> Work:
    """What to evaluate after ``changed`` (kind, external_id) objects got new versions.

    An order: itself and its refund-info. A transaction: itself and the orders naming it
    (``orders_of_tx``, the reconcile index). A refund-info: itself and its order.
    """
    by_kind: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for kind, external_id in changed:
        if kind in by_kind:
            by_kind[kind].add(external_id)
    linked = {o for tx in by_kind[TRANSACTION] for o in orders_of_tx.get(tx, ())}
    return Work(
        source,
        orders=frozenset(by_kind[ORDER] | by_kind[REFUND] | linked),
        transactions=frozenset(by_kind[TRANSACTION]),
        refunds=frozenset(by_kind[REFUND] | by_kind[ORDER]),
    )


@dataclass
class Evaluation:
    """What ``evaluate`` found, and the index facts it learned."""

    findings: list[Finding] = field(default_factory=list)
    scopes: set[Scope] = field(default_factory=set)
    links: set[tuple[str, str, str]] = field(default_factory=set)  # (source, tx_id, order_id)
    awaiting: set[tuple[str, str]] = field(default_factory=set)  # REFUNDED, no refund-info
    not_awaiting: set[tuple[str, str]] = field(default_factory=set)  # evaluated, and not so


def evaluate(
    work: Work,
    loaded: Mapping[str, Mapping[str, Snapshot]],
    precision: PrecisionTable,
    now: datetime,
    grace: timedelta,
) -> Evaluation:
    """Run the rules of ``work`` on the latest snapshots in ``loaded`` (kind → id → snapshot).

    An id with no stored snapshot is skipped; a refund-info whose order is not stored yet gets
    only the ``refund`` rule, so an older ``refund-vs-order`` alert stays as it is.
    """
    orders, txs, refunds = (loaded.get(kind, {}) for kind in KINDS)
    out = Evaluation()
    src = work.source
    for order_id in sorted(work.orders):
        order = orders.get(order_id)
        if order is None:
            continue
        tx_id = _tx_id(order)
        refund = refunds.get(order_id)
        out.findings += evaluate_order(
            order, txs.get(tx_id) if tx_id else None, refund, precision, now, grace
        )
        out.scopes |= {(src, "order", order_id), (src, "refund-missing", order_id)}
        if tx_id:
            out.links.add((src, tx_id, order_id))
        waiting = refund is None and status_of(order.payload) == "REFUNDED"
        (out.awaiting if waiting else out.not_awaiting).add((src, order_id))
    for tx_id in sorted(work.transactions):
        tx = txs.get(tx_id)
        if tx is not None:
            out.findings += evaluate_transaction(tx, precision)
            out.scopes.add((src, "transaction", tx_id))
    for order_id in sorted(work.refunds):
        refund = refunds.get(order_id)
        if refund is None:
            continue
        order = orders.get(order_id)
        out.findings += evaluate_refund(refund, order, precision)
        out.scopes.add((src, "refund", order_id))
        if order is not None:
            out.scopes.add((src, RVO, order_id))
    return out


def _tx_id(order: Snapshot) -> str | None:
    value = order.payload.get("tx_id")
    return value if isinstance(value, str) and value else None
