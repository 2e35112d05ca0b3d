"""How Aurpay orders, refund-info objects and transactions post to the journal.

Every receipt is booked (docs/gateways/aurpay.md (A-STAT-5, A-AMT-3), docs/accounting.md):

- a settled order (SUCCESS, RESOLVED, REFUNDED) posts the sale: gross to ``income:sales``, the
  fee to ``expenses:gateway-fees``, what arrived to the gateway balance at the chain's
  precision (sub-unit residue to ``expenses:rounding``). More than due is a deposit owed to the
  customer (``liabilities:<source>:deposits``); less than due is an accepted underpayment on
  RESOLVED (A-STAT-3) and suspense otherwise; within one unit it is rounding.
- any other order that carries a non-zero ``obtained`` (PARTIAL, OVERDUE, PENDING, …) received
  money without settling: the balance goes up and the amount is a deposit until the order
  settles, when the deposit entry is reversed and the sale posts (inferred: ``obtained`` is
  what arrived whatever the status; the docs define it for no status).
- a refund-info object posts the refund: the balance pays ``amount``, split into the network
  fee and what the customer obtained (contra-revenue).

Dates are effective dates: the sale at payment time (the ``update_time`` of the first settled
version; an order first seen already refunded was paid within its 30-minute validity of
``create_time``, A-STAT-2), a receipt when ``obtained`` first appeared, the refund at the
``update_time`` of the order's first REFUNDED version (``refund_et``'s unit is undocumented,
A-REF-3), else when tally saw it. Values come from the order's own quote (``vs_price`` in
``vs_currency`` for ``amount``), pro rata; a refund is valued at its order's quote.
Transactions post nothing: they are evidence for orders, checked by the reconciliation rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.journal import accounts
from ledger.journal.postings import (
    NO_HISTORY,
    Derived,
    Deriver,
    History,
    UnpostableSnapshot,
    chain_unit,
    legs,
    on_chain,
    read_amount,
    read_currency,
    residual,
)
from ledger.journal.valuation import Quote, valued
from ledger.model import Posting, Snapshot
from ledger.money import fmt
from ledger.precision import PrecisionTable
from ledger.timeparse import first_timestamp, parse_timestamp

PAID_STATUSES = frozenset({"SUCCESS", "RESOLVED", "REFUNDED"})
SETTLED_BEFORE_REFUND = frozenset({"SUCCESS", "RESOLVED"})
UNPAID_STATUSES = frozenset({"PENDING", "OVERDUE", "TERMINATED", "PARTIAL"})


def status_of(payload: Mapping[str, Any]) -> str:
    """The status, upper-cased ("Refunded" in the dashboard guide, REFUNDED in the API)."""
    value = payload.get("status")
    return value.strip().upper() if isinstance(value, str) else ""


def quote_of(order: Mapping[str, Any], currency: str) -> Quote | None:
    """The order's fiat quote: ``vs_price`` ``vs_currency`` for ``amount`` of its crypto."""
    try:
        price = read_amount(order, "vs_price")
        amount = read_amount(order, "amount")
        fiat = read_currency(order, "vs_currency")
    except UnpostableSnapshot:  # a malformed quote is no quote; the sale still posts
        return None
    if price is None or amount is None or amount == 0 or price < 0:
        return None
    quoted_at = first_timestamp(order, "create_time")
    return Quote(price, fiat, amount, currency, "aurpay order.vs_price", quoted_at)


def _first(versions: Sequence[Snapshot], wanted: frozenset[str]) -> Snapshot | None:
    return next((v for v in versions if status_of(v.payload) in wanted), None)


def _order_versions(snapshot: Snapshot, history: History) -> Sequence[Snapshot]:
    return history.versions(snapshot.source, "order", snapshot.external_id) or (snapshot,)


def _paid_at(snapshot: Snapshot, history: History) -> datetime:
    """When the sale happened: the first settled (not yet refunded) version's update_time."""
    settled = _first(_order_versions(snapshot, history), SETTLED_BEFORE_REFUND)
    if settled is not None:
        moment = parse_timestamp(settled.payload.get("update_time"))
        if moment is not None:
            return moment
    payload = snapshot.payload
    return first_timestamp(payload, "create_time", "update_time") or snapshot.observed_at


def _received_at(snapshot: Snapshot, history: History) -> datetime:
    """When money first arrived on an unsettled order: the first version carrying obtained."""
    for version in _order_versions(snapshot, history):
        if read_amount(version.payload, "obtained"):
            moment = first_timestamp(version.payload, "update_time", "create_time")
            if moment is not None:
                return moment
    return first_timestamp(snapshot.payload, "update_time") or snapshot.observed_at


def derive_order(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY
) -> Derived | None:
    """A settled order's sale, or an unsettled order's receipt; None when nothing arrived."""
    payload = snapshot.payload
    status = status_of(payload)
    amount = read_amount(payload, "amount")
    if amount is None:
        return None
    currency = read_currency(payload)
    fee = read_amount(payload, "fee") or Decimal(0)
    obtained = read_amount(payload, "obtained")
    unit = chain_unit(precision, currency, amount, fee, obtained)
    if status in PAID_STATUSES:
        suspense = accounts.suspense(snapshot.source, snapshot.kind, snapshot.external_id)
        postings = _sale(
            snapshot.source, status, currency, amount, fee, obtained, unit, precision, suspense
        )
        date = _paid_at(snapshot, history)
        what = f"sale {fmt(amount)} {currency}"
    elif obtained:
        postings = _receipt(snapshot.source, currency, obtained, unit)
        date = _received_at(snapshot, history)
        what = f"received {fmt(obtained)} {currency}, not settled"
    else:
        return None
    if not postings:
        return None
    with_values, meta = valued(postings, quote_of(payload, currency))
    description = f"Aurpay order {snapshot.external_id} {status}: {what}"
    return Derived(with_values, date, description, meta)


def _sale(
    source: str,
    status: str,
    currency: str,
    amount: Decimal,
    fee: Decimal,
    obtained: Decimal | None,
    unit: Decimal,
    precision: PrecisionTable,
    suspense: str,
) -> tuple[Posting, ...]:
    due = amount - fee
    received = due if obtained is None else obtained
    held, dust = on_chain(received, unit)
    short = due - received  # > 0: less arrived than due; < 0: more
    difference: Posting | None = residual(precision, currency, short, unit, suspense=suspense)
    if difference is not None and difference.account == suspense:
        if short < 0:  # an overpayment is owed back to the customer
            difference = Posting(accounts.deposits(source), currency, short)
        elif status == "RESOLVED":  # the merchant accepted the shortfall
            difference = Posting(accounts.ACCEPTED_UNDERPAYMENTS, currency, short)
    return legs(
        Posting(accounts.SALES, currency, -amount),
        Posting(accounts.GATEWAY_FEES, currency, fee),
        Posting(accounts.asset(source, currency), currency, held),
        Posting(accounts.ROUNDING, currency, dust),
        difference,
    )


def _receipt(source: str, currency: str, obtained: Decimal, unit: Decimal) -> tuple[Posting, ...]:
    held, dust = on_chain(obtained, unit)
    return legs(
        Posting(accounts.asset(source, currency), currency, held),
        Posting(accounts.ROUNDING, currency, dust),
        Posting(accounts.deposits(source), currency, -obtained),
    )


def _refunded_at(snapshot: Snapshot, history: History) -> datetime | None:
    """The update_time of the order's first REFUNDED version, if tally holds one."""
    versions = history.versions(snapshot.source, "order", snapshot.external_id)
    first = _first(versions, frozenset({"REFUNDED"}))
    return None if first is None else parse_timestamp(first.payload.get("update_time"))


def derive_refund(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY
) -> Derived | None:
    """A refund (refund-info object): the gateway balance pays amount, split into fee and obtained.

    ``assets:<source>:<CUR> −amount``, ``expenses:network-fees +network_fee``,
    ``income:refunds +obtained`` (absent obtained = amount − network_fee), and
    d = amount − network_fee − obtained to suspense or rounding.
    """
    payload = snapshot.payload
    amount = read_amount(payload, "amount")
    if amount is None:
        return None
    currency = read_currency(payload)
    network_fee = read_amount(payload, "network_fee") or Decimal(0)
    obtained = read_amount(payload, "obtained")
    refunded = amount - network_fee if obtained is None else obtained
    unit = chain_unit(precision, currency, amount, network_fee, obtained)
    postings = legs(
        Posting(accounts.asset(snapshot.source, currency), currency, -amount),
        Posting(accounts.NETWORK_FEES, currency, network_fee),
        Posting(accounts.REFUNDS, currency, refunded),
        residual(
            precision,
            currency,
            amount - network_fee - refunded,
            unit,
            suspense=accounts.suspense(snapshot.source, snapshot.kind, snapshot.external_id),
        ),
    )
    if not postings:
        return None
    orders = history.versions(snapshot.source, "order", snapshot.external_id)
    quote = quote_of(orders[-1].payload, currency) if orders else None
    with_values, meta = valued(postings, quote)
    refunded_at = _refunded_at(snapshot, history)
    if refunded_at is None:
        meta = {**meta, "date_source": "observed"}
    description = f"Aurpay refund of order {snapshot.external_id}: {fmt(amount)} {currency}"
    return Derived(with_values, refunded_at or snapshot.observed_at, description, meta)


def derive_transaction(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY
) -> Derived | None:
    """Nothing: a transaction is evidence for its order, which already posts the sale."""
    return None


# What the journal derives per kind, for any source this gateway serves.
DERIVERS: Mapping[str, Deriver] = {
    "order": derive_order,
    "refund": derive_refund,
    "transaction": derive_transaction,
}
