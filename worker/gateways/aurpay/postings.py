"""How Aurpay orders, refund-info objects and transactions post to the journal.

Statuses (docs/gateways/aurpay.md (A-STAT-5)): SUCCESS, RESOLVED and REFUNDED orders were paid and
post the sale;
a REFUNDED order's refund posts separately, from its refund-info object (docs/gateways/aurpay.md
(A-REF-1)). PENDING,
OVERDUE and TERMINATED never brought money in. PARTIAL is a documented name without a
documented meaning (it may be a partial payment still open, or a partial refund), so it posts
nothing rather than guess an amount; the reconciliation rules and the raw snapshot keep it
visible. Unknown statuses post nothing either (docs/gateways/aurpay.md (A-STAT-6): treat as
non-terminal).
Transactions post nothing: they are evidence for orders (linked by ``tx_id``) and posting them
too would count each sale twice; the reconciliation rules check them instead.
The balance account is the source's (``assets:<source>:<CUR>``): each Aurpay account synced
under its own source name keeps its own balance.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledger.journal import accounts
from ledger.journal.postings import (
    Derived,
    Deriver,
    legs,
    read_amount,
    read_currency,
    residual,
    split,
)
from ledger.model import Posting, Snapshot
from ledger.money import fmt
from ledger.precision import PrecisionTable
from ledger.timeparse import first_timestamp

PAID_STATUSES = frozenset({"SUCCESS", "RESOLVED", "REFUNDED"})
UNPAID_STATUSES = frozenset({"PENDING", "OVERDUE", "TERMINATED", "PARTIAL"})


def status_of(payload: Mapping[str, Any]) -> str:
    """The status, upper-cased ("Refunded" in the dashboard guide, REFUNDED in the API)."""
    value = payload.get("status")
    return value.strip().upper() if isinstance(value, str) else ""


def derive_order(snapshot: Snapshot, precision: PrecisionTable) -> Derived | None:
    """A paid order's sale: gross to income, fee to expenses, net to the gateway balance.

    ``income:sales −amount``, ``expenses:gateway-fees +fee`` (null fee = 0) and
    ``assets:<source>:<CUR> +net`` where net = obtained when present, else amount − fee. When
    obtained is present, d = amount − fee − obtained goes to suspense or rounding.
    """
    payload = snapshot.payload
    status = status_of(payload)
    if status not in PAID_STATUSES:
        return None
    amount = read_amount(payload, "amount")
    if amount is None:
        return None
    currency = read_currency(payload)
    fee = read_amount(payload, "fee") or Decimal(0)
    net, difference = split(amount, fee, read_amount(payload, "obtained"))
    postings = legs(
        Posting(accounts.SALES, currency, -amount),
        Posting(accounts.GATEWAY_FEES, currency, fee),
        Posting(accounts.asset(snapshot.source, currency), currency, net),
        residual(precision, currency, difference),
    )
    if not postings:
        return None
    date = first_timestamp(payload, "update_time", "create_time") or snapshot.observed_at
    description = f"Aurpay order {snapshot.external_id} {status}: sale {fmt(amount)} {currency}"
    return Derived(postings, date, description)


def derive_refund(snapshot: Snapshot, precision: PrecisionTable) -> Derived | None:
    """A refund (refund-info object): the gateway balance pays amount, split into fee and obtained.

    ``assets:<source>:<CUR> −amount``, ``expenses:network-fees +network_fee``,
    ``income:refunds +obtained`` (absent obtained = amount − network_fee), and
    d = amount − network_fee − obtained to suspense or rounding. Dated when observed:
    ``refund_et``'s unit is not documented (docs/gateways/aurpay.md (A-REF-3): "the timestamp for
    the refund", example 60).
    """
    payload = snapshot.payload
    amount = read_amount(payload, "amount")
    if amount is None:
        return None
    currency = read_currency(payload)
    network_fee = read_amount(payload, "network_fee") or Decimal(0)
    refunded, difference = split(amount, network_fee, read_amount(payload, "obtained"))
    postings = legs(
        Posting(accounts.asset(snapshot.source, currency), currency, -amount),
        Posting(accounts.NETWORK_FEES, currency, network_fee),
        Posting(accounts.REFUNDS, currency, refunded),
        residual(precision, currency, difference),
    )
    if not postings:
        return None
    description = f"Aurpay refund of order {snapshot.external_id}: {fmt(amount)} {currency}"
    return Derived(postings, snapshot.observed_at, description)


def derive_transaction(snapshot: Snapshot, precision: PrecisionTable) -> Derived | None:
    """Nothing: a transaction is evidence for its order, which already posts the sale."""
    return None


# What the journal derives per kind, for any source this gateway serves.
DERIVERS: Mapping[str, Deriver] = {
    "order": derive_order,
    "refund": derive_refund,
    "transaction": derive_transaction,
}
