"""Ebioro's reconciliation rules, and the two entry points that evaluate one changed object.

Amounts are compared in whole USDC (cents / 100, as the journal posts them), so a finding's
difference is the amount its suspense sub-account holds. Each entry point gets only the snapshots
its rules need (latest versions only); "its refunds" are the refunds whose embedded
``payment.id`` is the payment (``refund_payment_id``):

=============================== ===========================================================
when this changes               evaluate
=============================== ===========================================================
a payment                       ``evaluate_payment(payment, its refunds)`` and
                                ``evaluate_refund(r, payment)`` for each of its refunds
a refund                        ``evaluate_refund(refund, its payment or None)`` and
                                ``evaluate_payment(payment, its refunds)`` if it is stored
the clock (periodic sweep)      ``evaluate_payment`` for payments ``marked_refunded`` with
                                no refund (``refunded-without-refund`` needs ``now``)
=============================== ===========================================================

``evaluate_payment`` covers the rules in ``PAYMENT_RULES`` for subject = the payment id;
``evaluate_refund`` covers ``REFUND_RULES`` for subject = the refund id (an alert in a covered
scope that is no longer found is resolved).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.journal.postings import UnpostableSnapshot
from ledger.model import Snapshot
from ledger.money import exact_arithmetic, fmt
from ledger.precision import PrecisionTable
from ledger.reconcile.regressions import REFUND_AFTER_REVERSAL, REFUND_UNPAID, STATUS_REGRESSION
from ledger.reconcile.rules import Finding, Precisions, for_rule, mismatch, report, rulebook
from ledger.timeparse import as_utc, first_timestamp
from worker.gateways.ebioro import lifecycle
from worker.gateways.ebioro.postings import (
    SALE_STATUSES,
    accepted_shortfall,
    asset_units,
    marked_refunded,
    refund_amount,
    refund_payment,
    refund_payment_id,
    settlement_currency,
    status_of,
)

# Rule ids: the alert key is (source, rule, subject, check), so they need no gateway prefix.
PAYMENT = "payment-amounts"
REFUNDS_VS_PAYMENT = "refunds-exceed-paid"
REFUND_MISSING = "refunded-without-refund"
REFUND_SETTLEMENT = "refund-settlement-id"
REFUND_ASSET = "refund-asset"
REFUND_VS_PAYMENT = "refund-exceeds-paid"
PAYMENT_RULES = (PAYMENT, REFUNDS_VS_PAYMENT, REFUND_MISSING, STATUS_REGRESSION)
REFUND_RULES = (
    REFUND_SETTLEMENT,
    REFUND_ASSET,
    REFUND_VS_PAYMENT,
    REFUND_UNPAID,
    REFUND_AFTER_REVERSAL,
)

__all__ = [
    "PAYMENT_RULES",
    "REFUND_RULES",
    "RULES",
    "evaluate_payment",
    "evaluate_refund",
    "marked_refunded",
    "refund_payment_id",
]


def evaluate_payment(
    payment: Snapshot,
    refunds: Sequence[Snapshot],
    precision: Precisions,
    now: datetime,
    grace: timedelta,
) -> list[Finding]:
    """Rules ``PAYMENT_RULES`` (amounts, refunds total, refunded without refund) for one
    payment and its refunds (refunds of other payments in ``refunds`` are ignored)."""
    mine = [r for r in refunds if refund_payment_id(r.payload) == payment.external_id]
    with exact_arithmetic():
        return [
            *payment_rule(payment, for_rule(precision, PAYMENT)),
            *refunds_vs_payment(payment, mine, for_rule(precision, REFUNDS_VS_PAYMENT)),
            *refund_missing(payment, mine, for_rule(precision, REFUND_MISSING), now, grace),
        ]


def evaluate_refund(
    refund: Snapshot, payment: Snapshot | None, precision: Precisions
) -> list[Finding]:
    """Rules ``REFUND_RULES`` (settlement id, asset, exceeds paid) for one refund.
    ``payment`` is the stored payment (latest version); None falls back to the copy embedded
    in the refund."""
    with exact_arithmetic():
        found = [
            *refund_settlement(refund, for_rule(precision, REFUND_SETTLEMENT)),
            *refund_asset(refund, payment, for_rule(precision, REFUND_ASSET)),
            *refund_vs_payment(refund, payment, for_rule(precision, REFUND_VS_PAYMENT)),
        ]
    payment_id = refund_payment_id(refund.payload)  # the incident names its payment
    return [dataclasses.replace(f, related=(payment_id,)) for f in found] if payment_id else found


def _units(payload: Mapping[str, Any], name: str) -> Decimal | None:
    """An asset-cents field in whole units; None when absent, null or unparsable."""
    try:
        return asset_units(payload, name)
    except UnpostableSnapshot:
        return None


def _refund_amount(refund: Snapshot) -> tuple[str | None, Decimal | None]:
    try:
        return refund_amount(refund.payload)
    except UnpostableSnapshot:
        return None, None


def _refund_asset_id(refund: Snapshot) -> str | None:
    amount = refund.payload.get("amount")
    asset_id = amount.get("asset_id") if isinstance(amount, Mapping) else None
    return asset_id.strip() if isinstance(asset_id, str) and asset_id.strip() else None


def _payment_of(
    refund: Snapshot, payment: Snapshot | None
) -> tuple[Mapping[str, Any], tuple[Snapshot, ...]]:
    """The payment payload to compare with, and the snapshots that evidence rests on."""
    if payment is not None:
        return payment.payload, (refund, payment)
    return refund_payment(refund.payload), (refund,)


def _asset_differs(refund: Snapshot, payment: Mapping[str, Any]) -> str | None:
    """Why the refund's asset is not the payment's settlement asset, or None if it is (or if
    either side does not say): full ``asset_id`` when the payment has one, else the code."""
    refund_asset_id = _refund_asset_id(refund)
    if refund_asset_id is None:
        return None
    payment_asset = payment.get("asset_id")
    if isinstance(payment_asset, str) and payment_asset.strip():
        if refund_asset_id != payment_asset.strip():
            return f"refund asset {refund_asset_id} ≠ payment asset {payment_asset.strip()}"
        return None
    currency = payment.get("settlement_currency")
    code, _ = _refund_amount(refund)
    if isinstance(currency, str) and currency.strip() and code != currency.strip().upper():
        return f"refund asset {refund_asset_id} ≠ payment settlement currency {currency.strip()}"
    return None


def payment_rule(payment: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """The payment's USDC amounts add up (each check only when its fields are present).
    ``received``: amount_paid = amount_received, any status (webhook example D-wh: 1000 =
    1000). ``remaining``: amount_received + amount_remaining = settlement_amount, any status
    (D-wh: 1000 + 0 = 1000; the create example carries settlement_amount on an open payment,
    docs/gateways/ebioro.md (E-AMT-2), so it is the amount due, not what arrived). ``settlement``:
    a paid payment (paid,
    refunded, underpaid_accepted) brought in what was due: settlement_amount = amount_paid +
    the accepted shortfall (amount_remaining when underpaid_accepted, else 0); the difference
    is what the journal puts in suspense. All in USDC cents (docs/gateways/ebioro.md (E-AMT-2,
    E-AMT-4)), compared in whole USDC."""
    payload = payment.payload
    currency = settlement_currency(payload)
    paid, due = _units(payload, "amount_paid"), _units(payload, "settlement_amount")
    received, remaining = _units(payload, "amount_received"), _units(payload, "amount_remaining")
    evidence = (payment,)
    found: list[Finding] = []
    if paid is not None and received is not None:
        detail = f"amount_paid {fmt(paid)} ≠ amount_received {fmt(received)} {currency}"
        found += report(
            PAYMENT, payment, currency, paid, received, precision, evidence, detail, "received"
        )
    if received is not None and remaining is not None and due is not None:
        detail = (
            f"amount_received {fmt(received)} + amount_remaining {fmt(remaining)} "
            f"≠ settlement_amount {fmt(due)} {currency}"
        )
        found += report(
            PAYMENT, payment, currency, due, received + remaining, precision, evidence, detail,
            "remaining",
        )  # fmt: skip
    accepted = _accepted(payload)
    if status_of(payload) in SALE_STATUSES and paid is not None and due is not None:
        if accepted is None:
            return found  # an unreadable amount_remaining explains nothing
        detail = f"settlement_amount {fmt(due)} ≠ amount_paid {fmt(paid)}"
        detail += f" + accepted shortfall {fmt(accepted)}" if accepted else ""
        found += report(
            PAYMENT, payment, currency, due, paid + accepted, precision, evidence,
            f"{detail} {currency}", "settlement",
        )  # fmt: skip
    return found


def _accepted(payload: Mapping[str, Any]) -> Decimal | None:
    try:
        return accepted_shortfall(payload)
    except UnpostableSnapshot:
        return None


def refund_vs_payment(
    refund: Snapshot, payment: Snapshot | None, precision: PrecisionTable
) -> list[Finding]:
    """A refund is at most its payment's amount_paid. D-rf documents "refund amount ≤ the
    payment's amount_paid" as a rule of refund creation (so refund amount.value is USDC cents,
    docs/gateways/ebioro.md (E-AMT-5)): a refund above it should not exist in any status, failed
    included. Compared only when
    the assets agree (else ``refund-asset`` reports it)."""
    payload, evidence = _payment_of(refund, payment)
    code, refunded = _refund_amount(refund)
    paid = _units(payload, "amount_paid")
    if code is None or refunded is None or paid is None or _asset_differs(refund, payload):
        return []
    if refunded <= paid:
        return []
    detail = f"refund {fmt(refunded)} > payment amount_paid {fmt(paid)} {code}"
    return report(
        REFUND_VS_PAYMENT, refund, code, paid, refunded, precision, evidence, detail, "amount"
    )


def refunds_vs_payment(
    payment: Snapshot, refunds: Sequence[Snapshot], precision: PrecisionTable
) -> list[Finding]:
    """The refunds of a payment that completed (status refunded) add up to at most its
    amount_paid. D-rf: refund amount ≤ amount_paid, one refund in progress at a time, so
    several refunds are possible one after another. Only when two or more refunds completed
    and none alone exceeds amount_paid (that is ``refund-exceeds-paid``'s finding)."""
    paid = _units(payment.payload, "amount_paid")
    done = [
        r
        for r in refunds
        if status_of(r.payload) == "refunded" and not _asset_differs(r, payment.payload)
    ]
    amounts = [_refund_amount(r)[1] for r in done]
    if paid is None or len(done) < 2 or any(a is None or a > paid for a in amounts):
        return []
    total = sum((a for a in amounts if a is not None), Decimal(0))
    currency = settlement_currency(payment.payload)
    detail = f"{len(done)} refunds total {fmt(total)} > amount_paid {fmt(paid)} {currency}"
    if total <= paid:
        return []
    evidence = (payment, *sorted(done, key=lambda r: r.external_id))
    return report(
        REFUNDS_VS_PAYMENT, payment, currency, paid, total, precision, evidence, detail, "total"
    )


def refund_settlement(refund: Snapshot, precision: PrecisionTable) -> list[Finding]:
    """A refund with status refunded carries a settlement_Id. docs/gateways/ebioro.md (E-STAT-4):
    refunded = done (submitted to
    Stellar and settled); docs/gateways/ebioro.md (E-REF-5): the refunded example carries
    ``settlement_Id`` (a 64-hex,
    Stellar-transaction-like id)."""
    if status_of(refund.payload) != "refunded":
        return []
    settlement_id = refund.payload.get("settlement_Id")
    if isinstance(settlement_id, str) and settlement_id.strip():
        return []
    code, _ = _refund_amount(refund)
    detail = "refund is refunded but carries no settlement_Id"
    return mismatch(
        REFUND_SETTLEMENT, refund, code or "", precision, (refund,), detail, "settlement_Id"
    )


def refund_asset(
    refund: Snapshot, payment: Snapshot | None, precision: PrecisionTable
) -> list[Finding]:
    """A refund's amount.asset_id is its payment's asset_id (else, when the payment names no
    asset, its code is the payment's settlement_currency). docs/gateways/ebioro.md (E-REF-3,
    E-PAY-4): a refund is sent in an
    asset (``amount.asset_id``) to the payment's sender_account; docs/gateways/ebioro.md (E-PAY-3):
    the payment carries the
    ``asset_id`` it was paid and settled in."""
    payload, evidence = _payment_of(refund, payment)
    why = _asset_differs(refund, payload)
    if why is None:
        return []
    code, _ = _refund_amount(refund)
    return mismatch(REFUND_ASSET, refund, code or "", precision, evidence, why, "asset_id")


def refund_missing(
    payment: Snapshot,
    refunds: Sequence[Snapshot],
    precision: PrecisionTable,
    now: datetime,
    grace: timedelta,
) -> list[Finding]:
    """A payment marked refunded (status refunded or ``refunded: true``, docs/gateways/ebioro.md
    (E-PAY-5, E-STAT-1)) for longer
    than the grace period has a refund that did not fail. Refunds are listed by ``GET
    /refunds`` with their payment embedded (docs/gateways/ebioro.md (E-REF-1)). Refunded since =
    the later of updatedAt and when tally first saw this version (as on Aurpay): a backfill
    reads payments before the refunds feed, so a refund tally could not yet have read is not
    missing. expected = amount_paid (0 if unknown), actual = 0."""
    if not marked_refunded(payment.payload):
        return []
    if any(status_of(r.payload) != "failed" for r in refunds):
        return []
    seen = as_utc(payment.observed_at)
    updated = first_timestamp(payment.payload, "updatedAt")
    since = max(updated, seen) if updated else seen
    if as_utc(now) - since <= grace:
        return []
    currency = settlement_currency(payment.payload)
    expected = _units(payment.payload, "amount_paid") or Decimal(0)
    detail = f"payment refunded since {since.isoformat()} has no refund after {grace}"
    return report(
        REFUND_MISSING, payment, currency, expected, Decimal(0), precision, (payment,), detail,
        tolerate=False,
    )  # fmt: skip


# What each rule rests on (docs/gateways/ebioro.md): the refund limits are documented rules of
# refund creation (E-REF-3); the payment equations come from one example (E-AMT-4), the rest
# from examples and field names. Amounts arrive in USDC cents (scale -2): a tolerance is set in
# cents, by default half a cent, so a float artifact or a 0.001-cent rounding never alerts
# while a one-cent difference does.
CENT_TOLERANCE = Decimal("0.5")
RULES = rulebook(
    (PAYMENT, payment_rule, "inferred"),
    (REFUNDS_VS_PAYMENT, refunds_vs_payment, "documented"),
    (REFUND_MISSING, refund_missing, "inferred"),
    (REFUND_SETTLEMENT, refund_settlement, "inferred"),
    (REFUND_ASSET, refund_asset, "inferred"),
    (REFUND_VS_PAYMENT, refund_vs_payment, "documented"),
    # A refund requires a paid payment (docs/gateways/ebioro.md (E-REF-3)); statuses moving
    # only forward is inferred.
    (STATUS_REGRESSION, lifecycle.status_regression_rule, "inferred"),
    (REFUND_UNPAID, lifecycle.refund_unpaid_rule, "documented"),
    (REFUND_AFTER_REVERSAL, lifecycle.refund_after_reversal_rule, "inferred"),
    gateway="ebioro",
    scale=-2,
    tolerance=CENT_TOLERANCE,
)
