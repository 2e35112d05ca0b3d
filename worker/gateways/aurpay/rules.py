"""Aurpay's reconciliation rules, and the three entry points that evaluate one changed object.

Each entry point gets only the snapshots its rules need, so the caller re-evaluates just what
changed (latest versions only):

============================== ===========================================================
when this changes              evaluate
============================== ===========================================================
an order                       ``evaluate_order`` (+ ``evaluate_refund`` if it has refund-info)
a transaction                  ``evaluate_transaction`` (+ ``evaluate_order`` for its orders)
a refund-info object           ``evaluate_refund`` (+ ``evaluate_order`` for its order)
the clock (periodic sweep)     ``evaluate_order`` for REFUNDED orders without refund-info
============================== ===========================================================
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ledger.model import Snapshot
from ledger.money import exact_arithmetic, fmt
from ledger.precision import PrecisionTable
from ledger.reconcile.rules import (
    Finding,
    amount_or_none,
    code_or_none,
    fee_or_none,
    mismatch,
    report,
    rulebook,
)
from ledger.timeparse import as_utc, first_timestamp
from worker.gateways.aurpay.postings import PAID_STATUSES, status_of

# Rule ids: the alert key is (source, rule, subject, check), so they need no gateway prefix.
ORDER = "order"
TRANSACTION = "transaction"
REFUND = "refund"
RVO = "refund-vs-order"
REFUND_MISSING = "refund-missing"
# What each entry point judges, for the plan's scopes (an alert in a judged scope that is no
# longer found resolves).
ORDER_RULES = (ORDER, REFUND_MISSING)
TRANSACTION_RULES = (TRANSACTION,)
REFUND_RULES = (REFUND, RVO)

# Transaction statuses are not documented (docs/gateways/aurpay.md (A-STAT-7)); these are the order
# statuses that mean the
# money arrived (docs/gateways/aurpay.md (A-STAT-5)). Any other status is treated as not yet
# settled and left unchecked.
SETTLED_TX_STATUSES = PAID_STATUSES


def evaluate_order(
    order: Snapshot,
    tx: Snapshot | None,
    refund: Snapshot | None,
    precision: PrecisionTable,
    now: datetime,
    grace: timedelta,
) -> list[Finding]:
    """Rules ``order`` and ``refund-missing`` for one order, its linked transaction (same
    ``tx_id``) and its refund-info object, each the latest version or None."""
    with exact_arithmetic():
        return [
            *order_rule(order, tx, precision),
            *refund_missing(order, refund, precision, now, grace),
        ]


def evaluate_transaction(tx: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """Rule ``transaction`` for one transaction."""
    with exact_arithmetic():
        return transaction_rule(tx, precision)


def evaluate_refund(
    refund: Snapshot, order: Snapshot | None, precision: PrecisionTable
) -> list[Finding]:
    """Rules ``refund`` and ``refund-vs-order`` for one refund-info object and its order."""
    with exact_arithmetic():
        found = refund_rule(refund, precision)
        if order is not None:
            found += refund_vs_order(refund, order, precision)
        return found


def _equation(
    rule: str, subject: Snapshot, gross: str, fee: str, precision: PrecisionTable
) -> list[Finding]:
    """``gross − fee = obtained`` on one payload (null fee = 0); nothing when a value is missing."""
    payload = subject.payload
    currency = code_or_none(payload, "currency")
    amount = amount_or_none(payload, gross)
    charged = fee_or_none(payload, fee)
    obtained = amount_or_none(payload, "obtained")
    if currency is None or amount is None or charged is None or obtained is None:
        return []
    detail = f"{gross} {fmt(amount)} − {fee} {fmt(charged)} ≠ obtained {fmt(obtained)} {currency}"
    return report(
        rule, subject, currency, amount - charged, obtained, precision, (subject,), detail
    )


def refund_rule(refund: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """Refund info: amount − network_fee = obtained. Aurpay (docs/gateways/aurpay.md (A-REF-2))
    documents all three fields in
    one unit; its own example holds exactly (7.6883 − 0.353 = 7.3353)."""
    return _equation(REFUND, refund, "amount", "network_fee", precision)


def transaction_rule(tx: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """Settled transaction (status SUCCESS, RESOLVED or REFUNDED) carrying obtained:
    amount − fee = obtained. Aurpay (docs/gateways/aurpay.md (A-TX-1)) lists amount, obtained and
    fee on each transaction;
    transaction statuses are undocumented, so only the paid order statuses count as settled."""
    if status_of(tx.payload) not in SETTLED_TX_STATUSES:
        return []
    return _equation(TRANSACTION, tx, "amount", "fee", precision)


def order_rule(order: Snapshot, tx: Snapshot | None, precision: PrecisionTable) -> list[Finding]:
    """Paid order (SUCCESS, RESOLVED, REFUNDED) carrying obtained: amount − fee = obtained; and
    it agrees with its transaction (same tx_id) on currency, amount, and fee and obtained where
    both carry them. Aurpay (docs/gateways/aurpay.md (A-ORD-1)): the order object carries tx_id,
    amount, fee, obtained; docs/gateways/aurpay.md (A-TX-1): so
    does the transaction. A RESOLVED underpayment is expected to break the equation: it alerts
    on purpose, since no documented field states the shortfall the merchant accepted."""
    if status_of(order.payload) not in PAID_STATUSES:
        return []
    found = _equation(ORDER, order, "amount", "fee", precision)
    if tx is not None and _linked(order, tx):
        found += _agreement(order, tx, precision)
    return found


def _linked(order: Snapshot, tx: Snapshot) -> bool:
    tx_id = order.payload.get("tx_id")
    return bool(tx_id) and tx_id in (tx.external_id, tx.payload.get("tx_id"))


def _agreement(order: Snapshot, tx: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """Order vs transaction, field by field; a currency mismatch makes amounts incomparable."""
    currency = code_or_none(order.payload, "currency")
    tx_currency = code_or_none(tx.payload, "currency")
    if currency is None or tx_currency is None:
        return []
    evidence = (order, tx)
    if currency != tx_currency:
        detail = f"order currency {currency} ≠ transaction currency {tx_currency}"
        return mismatch(ORDER, order, currency, precision, evidence, detail, "currency")
    found: list[Finding] = []
    for field in ("amount", "fee", "obtained"):
        ours, theirs = amount_or_none(order.payload, field), amount_or_none(tx.payload, field)
        if ours is None or theirs is None:
            continue
        detail = f"order {field} {fmt(ours)} ≠ transaction {field} {fmt(theirs)} {currency}"
        found += report(ORDER, order, currency, ours, theirs, precision, evidence, detail, field)
    return found


def refund_vs_order(refund: Snapshot, order: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """The refund's chain and currency are the order's, and the refunded amount ≤ what the
    order brought in (obtained, else amount − fee). Aurpay (docs/gateways/aurpay.md (A-REF-1,
    A-REF-5)): refund-info carries the
    refund's own chain and currency; partial refunds are undocumented, so only ≤ is checked."""
    evidence = (refund, order)
    currency = code_or_none(refund.payload, "currency")
    found: list[Finding] = []
    for field in ("chain", "currency"):
        theirs, ours = code_or_none(refund.payload, field), code_or_none(order.payload, field)
        if theirs is not None and ours is not None and theirs != ours:
            detail = f"refund {field} {theirs} ≠ order {field} {ours}"
            found += mismatch(RVO, refund, currency or "", precision, evidence, detail, field)
    refunded = amount_or_none(refund.payload, "amount")
    brought_in = _brought_in(order)
    if found or currency is None or refunded is None or brought_in is None:
        return found  # a chain or currency mismatch makes the amounts incomparable
    if refunded <= brought_in:
        return []  # refunding less than came in is fine (a partial refund, or fees kept)
    detail = f"refunded {fmt(refunded)} > order brought in {fmt(brought_in)} {currency}"
    return report(
        RVO, refund, currency, brought_in, refunded, precision, evidence, detail, "amount"
    )


def _brought_in(order: Snapshot) -> Decimal | None:
    """What a paid order added to the balance: obtained, else amount − fee (null fee = 0)."""
    obtained = amount_or_none(order.payload, "obtained")
    if obtained is not None:
        return obtained
    amount, fee = amount_or_none(order.payload, "amount"), fee_or_none(order.payload, "fee")
    return None if amount is None or fee is None else amount - fee


def refund_missing(
    order: Snapshot,
    refund: Snapshot | None,
    precision: PrecisionTable,
    now: datetime,
    grace: timedelta,
) -> list[Finding]:
    """An order REFUNDED for longer than the grace period has refund info. Aurpay's endpoint
    list: refund-info is fetched for refunded orders (docs/gateways/aurpay.md (A-REF-4), per
    order_id). Refunded since =
    the later of the order's update_time (naive → UTC) and when tally first saw this version:
    a refund tally could not yet have fetched (an old order seen for the first time in a
    backfill) is not missing. expected = what the order brought in (0 if unknown), actual =
    0 refunded on record."""
    if refund is not None or status_of(order.payload) != "REFUNDED":
        return []
    seen = as_utc(order.observed_at)
    updated = first_timestamp(order.payload, "update_time")
    since = max(updated, seen) if updated else seen
    if as_utc(now) - since <= grace:
        return []
    currency = code_or_none(order.payload, "currency") or ""
    expected = _brought_in(order) or Decimal(0)
    detail = f"order REFUNDED since {since.isoformat()} has no refund info after {grace}"
    return report(
        REFUND_MISSING,
        order,
        currency,
        expected,
        Decimal(0),
        precision,
        (order,),
        detail,
        tolerate=False,
    )


RULES = rulebook(
    (ORDER, order_rule),
    (TRANSACTION, transaction_rule),
    (REFUND, refund_rule),
    (RVO, refund_vs_order),
    (REFUND_MISSING, refund_missing),
)
