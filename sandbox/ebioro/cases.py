"""Legitimate cases a reconciler must not alert on, marked (or planted) in an Ebioro world.

``amount_received`` a thousandth of a cent off ``amount_paid`` (rounding, within the cents
tolerance: dust, so only when the world has dust) is planted into one clean paid payment, from
its own ``Random`` after the world is generated; a partial payment (``underpaid``) and a
refunded payment whose refund a backfill reads only after the payment (its grace counts from
first sight) are found as generated.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

CENTS_ROUNDING = "amount-received-rounding"
PARTIAL_PAYMENT = "partial-payment"
REFUNDED_BACKFILL = "refunded-backfill"
ROUNDING = Decimal("0.001")

Record = dict[str, Any]


def _amounts_hold(payment: Record) -> bool:
    due = payment["settlement_amount"]
    return bool(payment["amount_paid"] == payment["amount_received"] == due) and (
        payment["amount_remaining"] == 0
    )


def _clean_paid(payment: Record) -> bool:
    return payment["status"] == "paid" and _amounts_hold(payment)


def _clean_refund(refund: Record, payment: Record) -> bool:
    """Refunded in full, settled, in the payment's asset: nothing planted."""
    return (
        refund["status"] == "refunded"
        and bool(refund["settlement_Id"])
        and refund["amount"]["asset_id"] == payment["asset_id"]
        and refund["amount"]["value"] == payment["amount_paid"]
    )


def plant_cases(
    seed: int,
    dust: bool,
    payments: Mapping[str, Record],
    refunds: Mapping[str, Record],
    payment_of: Mapping[str, str],
) -> dict[str, str]:
    """Plant and find the legitimate cases; case name → payment id (those the world has)."""
    rng = random.Random(f"{seed}:legit-cases")
    refunded = {payment_of[r] for r, refund in refunds.items() if refund["status"] != "failed"}
    with_refunds = set(payment_of.values())
    cases: dict[str, str] = {}
    clean = sorted(
        p for p, payment in payments.items() if _clean_paid(payment) and p not in with_refunds
    )
    if clean and dust:
        chosen = rng.choice(clean)
        payments[chosen]["amount_received"] = payments[chosen]["amount_paid"] + ROUNDING
        cases[CENTS_ROUNDING] = chosen
    partial = sorted(
        p
        for p, payment in payments.items()
        if payment["status"] == "underpaid"
        and payment["amount_received"] + payment["amount_remaining"] == payment["settlement_amount"]
        and payment["amount_paid"] == payment["amount_received"]
    )
    if partial:
        cases[PARTIAL_PAYMENT] = partial[0]
    backfilled = sorted(
        p
        for p, payment in payments.items()
        if payment["status"] == "refunded"
        and p in refunded
        and _amounts_hold(payment)
        and all(
            _clean_refund(refund, payment) for r, refund in refunds.items() if payment_of[r] == p
        )
    )
    if backfilled:
        cases[REFUNDED_BACKFILL] = backfilled[0]
    return cases
