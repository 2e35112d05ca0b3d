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

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

from ledger.model import Snapshot
from ledger.money import exact_arithmetic, fmt
from ledger.precision import PrecisionTable
from ledger.reconcile.regressions import (
    REFUND_AFTER_REVERSAL,
    REFUND_UNPAID,
    STATUS_REGRESSION,
)
from ledger.reconcile.rules import (
    Finding,
    Precisions,
    amount_or_none,
    code_or_none,
    fee_or_none,
    for_rule,
    mismatch,
    report,
    rulebook,
)
from ledger.reconcile.unknown import UNKNOWN_PRECISION
from ledger.timeparse import as_utc, first_timestamp
from worker.gateways.aurpay import lifecycle
from worker.gateways.aurpay.postings import PAID_STATUSES, status_of

# Rule ids: the alert key is (source, rule, subject, check), so they need no gateway prefix.
ORDER = "order"
TRANSACTION = "transaction"
REFUND = "refund"
RVO = "refund-vs-order"
REFUND_MISSING = "refund-missing"
# What each entry point judges, for the plan's scopes (an alert in a judged scope that is no
# longer found resolves).
ORDER_RULES = (ORDER, REFUND_MISSING, STATUS_REGRESSION)
TRANSACTION_RULES = (TRANSACTION,)
REFUND_RULES = (REFUND, RVO, REFUND_UNPAID, REFUND_AFTER_REVERSAL)

# Transaction statuses are not documented (docs/gateways/aurpay.md (A-STAT-7)); these are the order
# statuses that mean the
# money arrived (docs/gateways/aurpay.md (A-STAT-5)). Any other status is treated as not yet
# settled and left unchecked.
SETTLED_TX_STATUSES = PAID_STATUSES


def evaluate_order(
    order: Snapshot,
    tx: Snapshot | None,
    refund: Snapshot | None,
    precision: Precisions,
    now: datetime,
    grace: timedelta,
) -> list[Finding]:
    """Rules ``order`` and ``refund-missing`` for one order, its linked transaction (same
    ``tx_id``) and its refund-info object, each the latest version or None."""
    with exact_arithmetic():
        return [
            *order_rule(order, tx, for_rule(precision, ORDER), for_rule(precision, TRANSACTION)),
            *refund_missing(order, refund, for_rule(precision, REFUND_MISSING), now, grace),
        ]


def evaluate_transaction(tx: Snapshot, precision: Precisions) -> list[Finding]:
    """Rule ``transaction`` for one transaction."""
    with exact_arithmetic():
        return transaction_rule(tx, for_rule(precision, TRANSACTION))


def evaluate_refund(
    refund: Snapshot, order: Snapshot | None, precision: Precisions
) -> list[Finding]:
    """Rules ``refund`` and ``refund-vs-order`` for one refund-info object and its order."""
    with exact_arithmetic():
        found = refund_rule(refund, for_rule(precision, REFUND))
        if order is not None:
            found += refund_vs_order(refund, order, for_rule(precision, RVO))
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
    one unit; its own example holds exactly (7.6883 − 0.353 = 7.3353). A token refund (its
    currency is not its chain's coin, e.g. USDT-ERC20 on ETH) may have paid the network fee in
    the chain's coin (gas is paid in ETH): then nothing is taken from the token amount and
    amount = obtained holds instead (inferred)."""
    found = _equation(REFUND, refund, "amount", "network_fee", precision)
    if found and _fee_in_chain_coin(refund, precision):
        return []
    return found


def _fee_in_chain_coin(refund: Snapshot, precision: PrecisionTable) -> bool:
    """A token refund whose obtained is its whole amount: the fee was paid in the chain's coin."""
    chain, currency = (
        code_or_none(refund.payload, "chain"),
        code_or_none(refund.payload, "currency"),
    )
    amount, obtained = (
        amount_or_none(refund.payload, "amount"),
        amount_or_none(refund.payload, "obtained"),
    )
    if chain is None or currency is None or currency == chain or amount is None or obtained is None:
        return False
    return not precision.exceeds(currency, amount - obtained)


def transaction_rule(tx: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """Settled transaction (status SUCCESS, RESOLVED or REFUNDED) carrying obtained:
    amount − fee = obtained. Aurpay (docs/gateways/aurpay.md (A-TX-1)) lists amount, obtained and
    fee on each transaction;
    transaction statuses are undocumented, so only the paid order statuses count as settled.
    The incident names the transaction's order (its ``order_id``) as related: the order's
    disagreement on ``obtained`` is this cause, not one of its own."""
    if status_of(tx.payload) not in SETTLED_TX_STATUSES:
        return []
    found = _equation(TRANSACTION, tx, "amount", "fee", precision)
    order_id = tx.payload.get("order_id")
    if isinstance(order_id, str) and order_id:
        found = [dataclasses.replace(f, related=(order_id,)) for f in found]
    return found


def order_rule(
    order: Snapshot,
    tx: Snapshot | None,
    precision: PrecisionTable,
    tx_precision: PrecisionTable | None = None,
) -> list[Finding]:
    """Paid order (SUCCESS, RESOLVED, REFUNDED) carrying obtained: amount − fee = obtained; and
    it agrees with its transaction (same tx_id) on currency, amount, and fee and obtained where
    both carry them. Aurpay (docs/gateways/aurpay.md (A-ORD-1)): the order object carries tx_id,
    amount, fee, obtained; docs/gateways/aurpay.md (A-TX-1): so
    does the transaction. A RESOLVED underpayment is expected to break the equation: it alerts
    on purpose, since no documented field states the shortfall the merchant accepted.
    One cause, one incident: when the order's own equation holds and it disagrees with its
    transaction on ``obtained`` alone while the transaction's equation fails, the transaction
    is wrong and its incident carries it. An order paid in several on-chain transfers (more
    than one hash in ``tx_hash_list``) is compared only on currency and on its transaction
    being at most the order's amount: the transaction is one transfer of several."""
    if status_of(order.payload) not in PAID_STATUSES:
        return []
    found = _equation(ORDER, order, "amount", "fee", precision)
    if tx is None or not _linked(order, tx):
        return found
    agreement = _agreement(order, tx, precision)
    only_obtained = not found and {f.check for f in agreement} == {"obtained"}
    if only_obtained and transaction_rule(tx, tx_precision or precision):
        return []  # the transaction's own incident
    return found + agreement


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
        return _relate(
            mismatch(ORDER, order, currency, precision, evidence, detail, "currency"), tx
        )
    if _transfers(order) > 1:
        return _relate(_one_transfer(order, tx, currency, precision), tx)
    found: list[Finding] = []
    for field in ("amount", "fee", "obtained"):
        ours, theirs = amount_or_none(order.payload, field), amount_or_none(tx.payload, field)
        if ours is None or theirs is None:
            continue
        detail = f"order {field} {fmt(ours)} ≠ transaction {field} {fmt(theirs)} {currency}"
        found += report(ORDER, order, currency, ours, theirs, precision, evidence, detail, field)
    return _relate(found, tx)


def _relate(found: list[Finding], tx: Snapshot) -> list[Finding]:
    return [dataclasses.replace(f, related=(tx.external_id,)) for f in found]


def _transfers(order: Snapshot) -> int:
    """How many on-chain transfers paid the order (hashes in ``tx_hash_list``)."""
    hashes = order.payload.get("tx_hash_list")
    return len({h for h in hashes if isinstance(h, str) and h}) if isinstance(hashes, list) else 0


def _one_transfer(
    order: Snapshot, tx: Snapshot, currency: str, precision: PrecisionTable
) -> list[Finding]:
    """One transfer of several: its amount is at most the order's."""
    ours, theirs = amount_or_none(order.payload, "amount"), amount_or_none(tx.payload, "amount")
    if ours is None or theirs is None or theirs <= ours:
        return []
    detail = f"transfer amount {fmt(theirs)} > order amount {fmt(ours)} {currency}"
    return report(ORDER, order, currency, ours, theirs, precision, (order, tx), detail, "transfer")


def refund_vs_order(refund: Snapshot, order: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """The refund's chain and currency are the order's, and the refunded amount ≤ what the
    customer paid (the order's amount, else what it brought in: obtained, else amount − fee).
    Aurpay (docs/gateways/aurpay.md (A-REF-1, A-REF-5)): refund-info carries the
    refund's own chain and currency; partial refunds are undocumented, so only ≤ is checked.
    A merchant may refund the full price and absorb the gateway's fee, so the bound is the
    price paid, not the net the merchant kept."""
    evidence = (refund, order)
    currency = code_or_none(refund.payload, "currency")
    found: list[Finding] = []
    for field in ("chain", "currency"):
        theirs, ours = code_or_none(refund.payload, field), code_or_none(order.payload, field)
        if theirs is not None and ours is not None and theirs != ours:
            detail = f"refund {field} {theirs} ≠ order {field} {ours}"
            found += mismatch(RVO, refund, currency or "", precision, evidence, detail, field)
    refunded = amount_or_none(refund.payload, "amount")
    paid = amount_or_none(order.payload, "amount")
    bound = paid if paid is not None else _brought_in(order)
    if found or currency is None or refunded is None or bound is None:
        return found  # a chain or currency mismatch makes the amounts incomparable
    if refunded <= bound:
        return []  # at most the price: a partial refund, fees kept, or fees absorbed
    detail = f"refunded {fmt(refunded)} > order amount {fmt(bound)} {currency}"
    return report(RVO, refund, currency, bound, refunded, precision, evidence, detail, "amount")


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


# What each rule rests on (docs/gateways/aurpay.md): A-REF-2 is the one equation the docs
# state; the others apply it to objects the docs do not (A-AMT-3), or infer (A-REF-4, A-REF-5).
RULES = rulebook(
    (ORDER, order_rule, "inferred"),
    (TRANSACTION, transaction_rule, "inferred"),
    (REFUND, refund_rule, "documented"),
    (RVO, refund_vs_order, "inferred"),
    (REFUND_MISSING, refund_missing, "inferred"),
    # Statuses only move forward (PENDING → SUCCESS → REFUNDED, docs/gateways/aurpay.md
    # (A-STAT-2, A-STAT-6)); that there is no way back is inferred.
    (STATUS_REGRESSION, lifecycle.status_regression_rule, "inferred"),
    (REFUND_UNPAID, lifecycle.refund_unpaid_rule, "inferred"),
    (REFUND_AFTER_REVERSAL, lifecycle.refund_after_reversal_rule, "inferred"),
    (UNKNOWN_PRECISION, lifecycle.unknown_precision_rule, "inferred"),
    gateway="aurpay",
)
