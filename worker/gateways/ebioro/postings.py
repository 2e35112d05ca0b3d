"""How Ebioro payments and refunds post to the journal (docs/gateways/ebioro.md (E-PAY-1, E-REF-1,
E-AMT-1, E-AMT-2, E-STAT-2, E-STAT-4)).

Two commodities, never mixed: the fiat price (``amount.value`` in minor units → whole units of
``amount.currency``, e.g. 1000 → 10.00 USD) and the USDC that moved (``settlement_amount``,
``amount_paid``, ``settlement_fee``, ``amount_remaining`` and refund ``amount.value`` in USDC
cents → USDC, e.g. 66.575 → 0.66575 USDC). They meet in ``equity:conversions``, a trading
account: each sale puts there the fiat price and the USDC due for it (``settlement_amount``,
which the payment carries from creation on, docs/gateways/ebioro.md (E-AMT-2)), so every entry
balances per commodity and the
account's balances are Ebioro's own quotes. No FX rate is documented (docs/gateways/ebioro.md
(E-AMT-6)), so none is invented.

A sale posts once the customer paid: status ``paid``, ``underpaid_accepted`` or ``refunded``
(a refund requires one of the first two, docs/gateways/ebioro.md (E-REF-3)). Any other payment
that received money (``underpaid`` awaiting top-up, ``expired`` with ``amount_paid > 0``, …)
books the receipt as a customer deposit until it settles; more than due is a deposit owed back.
A refund posts when its status is ``refunded`` (done, docs/gateways/ebioro.md (E-STAT-4)), in
the payment's settlement commodity when its ``asset_id`` is the payment's, else in its own
``CODE:ISSUER`` commodity (a USDC of another issuer is not our USDC; the ``refund-asset`` rule
alerts on it). Dates: the sale at the ``updatedAt`` of the first paid version (a payment first
seen refunded: its ``createdAt``), the refund at its embedded payment's ``updatedAt`` (refunds
carry no timestamp of their own, E-REF-2). Values come from the payment's fiat price.
The balance account is the source's (``assets:<source>:USDC``), one per Ebioro account synced.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    legs,
    read_amount,
    read_currency,
    residual,
)
from ledger.journal.valuation import Quote, valued
from ledger.model import Posting, Snapshot
from ledger.money import fmt
from ledger.precision import FIAT_MINOR_UNITS, PrecisionTable
from ledger.timeparse import first_timestamp

CONVERSIONS = accounts.CONVERSIONS
ACCEPTED_UNDERPAYMENTS = accounts.ACCEPTED_UNDERPAYMENTS
SALE_STATUSES = frozenset({"paid", "underpaid_accepted", "refunded"})
PAID_BEFORE_REFUND = frozenset({"paid", "underpaid_accepted"})
# USDC amounts are sent in cents, 2 places (docs/gateways/ebioro.md (E-AMT-2): "not Stellar's
# 7-decimal stroops").
ASSET_MINOR_PLACES = 2
# Ebioro settles in USDC on Stellar (docs/gateways/ebioro.md (E-HOST-1)); the code used when a
# payment does not name it.
SETTLEMENT_CURRENCY = "USDC"


def status_of(payload: Mapping[str, Any]) -> str:
    value = payload.get("status")
    return value.strip().lower() if isinstance(value, str) else ""


def marked_refunded(payload: Mapping[str, Any]) -> bool:
    """A payment whose status is ``refunded`` or whose ``refunded`` flag is true."""
    return status_of(payload) == "refunded" or payload.get("refunded") is True


def asset_units(payload: Mapping[str, Any], name: str) -> Decimal | None:
    """``payload[name]`` (asset cents) in whole units, exactly; None when absent or null."""
    cents = read_amount(payload, name)
    return None if cents is None else cents.scaleb(-ASSET_MINOR_PLACES)


def asset_code(asset_id: Any) -> str | None:
    """``USDC`` from ``USDC:GA5Z…`` (docs/gateways/ebioro.md (E-PAY-3): asset ids are
    ``CODE:ISSUER``)."""
    if not isinstance(asset_id, str) or not asset_id.split(":", 1)[0].strip():
        return None
    return asset_id.split(":", 1)[0].strip().upper()


def settlement_currency(payment: Mapping[str, Any]) -> str:
    """The payment's USDC-side commodity: ``settlement_currency``, else its asset's code."""
    value = payment.get("settlement_currency")
    if isinstance(value, str) and value.strip():
        return value.strip().upper()
    return asset_code(payment.get("asset_id")) or SETTLEMENT_CURRENCY


def fiat_price(payment: Mapping[str, Any]) -> tuple[str, Decimal]:
    """(currency, price in whole units) from ``amount`` = {value: minor units, currency}."""
    amount = payment.get("amount")
    if not isinstance(amount, Mapping):
        raise UnpostableSnapshot("amount: missing")
    currency = read_currency(amount, "currency")
    places = FIAT_MINOR_UNITS.get(currency)
    if places is None:
        raise UnpostableSnapshot(f"amount.currency: no known minor unit for {currency}")
    minor = amount.get("value")
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise UnpostableSnapshot("amount.value: not a whole number of minor units")
    return currency, Decimal(minor).scaleb(-places)


def refund_payment(refund: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payment embedded in a refund object (docs/gateways/ebioro.md (E-REF-1)), or {}."""
    payment = refund.get("payment")
    return payment if isinstance(payment, Mapping) else {}


def refund_payment_id(refund: Mapping[str, Any]) -> str | None:
    """The id of the payment a refund belongs to (its embedded ``payment.id``)."""
    payment_id = refund_payment(refund).get("id")
    return payment_id if isinstance(payment_id, str) and payment_id else None


def refund_amount(refund: Mapping[str, Any]) -> tuple[str | None, Decimal | None]:
    """(asset code, amount in whole units) of a refund's ``amount`` = {asset_id, value}."""
    amount = refund.get("amount")
    if not isinstance(amount, Mapping):
        return None, None
    return asset_code(amount.get("asset_id")), asset_units(amount, "value")


def refund_commodity(refund: Mapping[str, Any]) -> str | None:
    """The commodity a refund is paid in: the payment's settlement commodity when the refund's
    ``asset_id`` is the payment's (or either does not say), else ``CODE:ISSUER`` itself."""
    amount = refund.get("amount")
    asset_id = amount.get("asset_id") if isinstance(amount, Mapping) else None
    code = asset_code(asset_id)
    if code is None:
        return None
    payment = refund_payment(refund)
    paid_in = payment.get("asset_id")
    if not isinstance(paid_in, str) or not paid_in.strip() or ":" not in str(asset_id):
        return code
    if str(asset_id).strip() == paid_in.strip():
        return settlement_currency(payment) if payment else code
    issuer = str(asset_id).split(":", 1)[1].strip()
    return f"{code}:{issuer}"


def quote_of(payment: Mapping[str, Any], commodity: str) -> Quote | None:
    """The payment's fiat price as a quote for the settlement amount due (E-AMT-2)."""
    try:
        fiat, price = fiat_price(payment)
    except UnpostableSnapshot:
        return None
    due = asset_units(payment, "settlement_amount") or asset_units(payment, "amount_paid")
    if not due:
        return None
    quoted_at = first_timestamp(payment, "createdAt")
    return Quote(price, fiat, due, commodity, "ebioro payment.amount", quoted_at)


def accepted_shortfall(payment: Mapping[str, Any]) -> Decimal:
    """What the merchant accepted not to receive: ``amount_remaining`` (whole USDC) of an
    ``underpaid_accepted`` payment (docs/gateways/ebioro.md (E-STAT-2, E-AMT-4); remaining = still
    owed, D-wh), else 0."""
    if status_of(payment) != "underpaid_accepted":
        return Decimal(0)
    return asset_units(payment, "amount_remaining") or Decimal(0)


def _paid_at(snapshot: Snapshot, history: History) -> datetime:
    """The sale's date: the updatedAt of the first paid version, else (first seen refunded)
    createdAt: a payment is paid within its 30-minute validity (E-TIME-3)."""
    versions = history.versions(snapshot.source, snapshot.kind, snapshot.external_id)
    versions = versions or (snapshot,)
    first = next((v for v in versions if status_of(v.payload) in PAID_BEFORE_REFUND), None)
    if first is not None:
        moment = first_timestamp(first.payload, "updatedAt")
        if moment is not None:
            return moment
    return first_timestamp(snapshot.payload, "createdAt", "updatedAt") or snapshot.observed_at


def _received_at(snapshot: Snapshot, history: History) -> datetime:
    """A receipt's date: the updatedAt of the first version with money paid."""
    versions = history.versions(snapshot.source, snapshot.kind, snapshot.external_id)
    for version in versions or (snapshot,):
        if asset_units(version.payload, "amount_paid"):
            moment = first_timestamp(version.payload, "updatedAt", "createdAt")
            if moment is not None:
                return moment
    return first_timestamp(snapshot.payload, "updatedAt") or snapshot.observed_at


def derive_receipt(
    snapshot: Snapshot, precision: PrecisionTable, history: History
) -> Derived | None:
    """An unsettled payment that received money: balance up, a deposit owed until it settles."""
    payload = snapshot.payload
    paid = asset_units(payload, "amount_paid")
    if not paid:
        return None
    usdc = settlement_currency(payload)
    fee = asset_units(payload, "settlement_fee") or Decimal(0)
    postings = legs(
        Posting(accounts.GATEWAY_FEES, usdc, fee),
        Posting(accounts.asset(snapshot.source, usdc), usdc, paid - fee),
        Posting(accounts.deposits(snapshot.source), usdc, -paid),
    )
    if not postings:
        return None
    with_values, meta = valued(postings, quote_of(payload, usdc))
    description = (
        f"Ebioro payment {snapshot.external_id} {status_of(payload)}: received {fmt(paid)} {usdc},"
        " not settled"
    )
    return Derived(with_values, _received_at(snapshot, history), description, meta)


def derive_payment(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY
) -> Derived | None:
    """A paid payment's sale, in two commodities joined by ``equity:conversions``.

    Fiat: ``income:sales −price``, ``equity:conversions +price``. USDC, with due =
    settlement_amount and paid = amount_paid (either stands in for the other when absent):
    ``equity:conversions −due``, ``expenses:gateway-fees +settlement_fee``,
    ``expenses:accepted-underpayments +amount_remaining`` (underpaid_accepted only),
    ``assets:<source>:USDC +(paid − fee)``, and d = due − paid − accepted to suspense or
    rounding. No USDC amount at all: nothing is posted.
    """
    payload = snapshot.payload
    status = status_of(payload)
    if status not in SALE_STATUSES:
        return derive_receipt(snapshot, precision, history)
    fiat, price = fiat_price(payload)
    usdc = settlement_currency(payload)
    paid = asset_units(payload, "amount_paid")
    due = asset_units(payload, "settlement_amount")
    fee = asset_units(payload, "settlement_fee") or Decimal(0)
    if paid is None and due is None:
        return None
    both = paid is not None and due is not None
    accepted = accepted_shortfall(payload) if both else Decimal(0)
    owed = due if due is not None else paid
    received = paid if paid is not None else due
    assert owed is not None and received is not None  # one of them is present
    suspense = accounts.suspense(snapshot.source, snapshot.kind, snapshot.external_id)
    difference = residual(precision, usdc, owed - received - accepted, suspense=suspense)
    if difference is not None and difference.account == suspense and difference.amount < 0:
        difference = Posting(
            accounts.deposits(snapshot.source), usdc, difference.amount
        )  # overpaid
    postings = legs(
        Posting(accounts.SALES, fiat, -price),
        Posting(CONVERSIONS, fiat, price),
        Posting(CONVERSIONS, usdc, -owed),
        Posting(accounts.GATEWAY_FEES, usdc, fee),
        Posting(ACCEPTED_UNDERPAYMENTS, usdc, accepted),
        Posting(accounts.asset(snapshot.source, usdc), usdc, received - fee),
        difference,
    )
    if not postings:
        return None
    with_values, meta = valued(postings, quote_of(payload, usdc))
    description = (
        f"Ebioro payment {snapshot.external_id} {status}: "
        f"{fmt(price)} {fiat} due as {fmt(owed)} {usdc}, paid {fmt(received)} {usdc}"
    )
    return Derived(with_values, _paid_at(snapshot, history), description, meta)


def derive_refund(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY
) -> Derived | None:
    """A completed refund: ``assets:<source>:<CODE> −amount``, ``income:refunds +amount``.

    The refund's own asset (``amount.asset_id``), in whole units. Refund objects carry no
    timestamp (docs/gateways/ebioro.md (E-REF-2)), so the entry is dated by the embedded
    payment's ``updatedAt`` (when it was marked refunded), else when observed. The Stellar
    network fee of the refund transaction is not reported by the API, so none is posted.
    """
    payload = snapshot.payload
    if status_of(payload) != "refunded":
        return None
    _, amount = refund_amount(payload)
    code = refund_commodity(payload)
    if code is None or amount is None:
        raise UnpostableSnapshot("amount: a refunded refund needs amount.asset_id and value")
    postings = legs(
        Posting(accounts.asset(snapshot.source, code), code, -amount),
        Posting(accounts.REFUNDS, code, amount),
    )
    if not postings:
        return None
    payment = refund_payment(payload)
    with_values, meta = valued(postings, quote_of(payment, code) if payment else None)
    refunded_at = first_timestamp(payment, "updatedAt")
    if refunded_at is None:
        meta = {**meta, "date_source": "observed"}
    payment_id = refund_payment_id(payload) or "?"
    description = (
        f"Ebioro refund {snapshot.external_id} of payment {payment_id}: {fmt(amount)} {code}"
    )
    return Derived(with_values, refunded_at or snapshot.observed_at, description, meta)


# What the journal derives per kind, for any source this gateway serves.
DERIVERS: Mapping[str, Deriver] = {"payment": derive_payment, "refund": derive_refund}
