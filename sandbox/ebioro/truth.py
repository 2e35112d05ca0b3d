"""What a correct Ebioro reconciler must find in the sandbox's data, recomputed exactly.

An oracle written from the doc, independent of ``worker/gateways/ebioro/rules.py`` (same rule
ids; a test checks they are in the Ebioro plan's rulebook). Rules (subject in brackets) and the
fact each rests on:

- ``payment-amounts`` (payment): ``amount_paid = amount_received`` and
  ``amount_received + amount_remaining = settlement_amount`` (webhook example
  docs/gateways/ebioro.md (E-AMT-4); the
  create example carries settlement_amount while amount_paid is 0, docs/gateways/ebioro.md
  (E-AMT-2)); a paid payment (paid,
  refunded, underpaid_accepted) has ``settlement_amount = amount_paid`` (+ amount_remaining
  when underpaid_accepted);
- ``refund-exceeds-paid`` (refund): refund ``amount.value`` ≤ the payment's
  ``amount_paid`` (documented refund rule, docs/gateways/ebioro.md (E-REF-3)), when both are in the
  same asset;
- ``refunds-exceed-paid`` (payment): two or more refunded refunds, none too big alone,
  together at most ``amount_paid`` (refunds one at a time, docs/gateways/ebioro.md (E-REF-3));
- ``refund-settlement-id`` (refund): a ``refunded`` refund carries ``settlement_Id``;
- ``refund-asset`` (refund): refund ``amount.asset_id`` = the payment's ``asset_id``;
- ``refunded-without-refund`` (payment): a payment with status ``refunded`` or
  ``refunded: true`` has a refund that did not fail. The grace period counts from the later of
  ``updatedAt`` and when tally first saw the payment, so a backfill finds these only once the
  grace has passed since the sync (``held_by_grace``).

Amounts are USDC cents, compared in cents: a difference counts when it exceeds half a cent (the
gateway's amounts are whole cents, so anything smaller is rounding: a float artifact, or
``amount_received`` 0.001 off). Dust — more than zero and at most that — must not be reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.money import InvalidAmount, to_decimal

RULE_AMOUNTS = "payment-amounts"
RULE_REFUND_EXCEEDS = "refund-exceeds-paid"
RULE_REFUNDS_TOTAL = "refunds-exceed-paid"
RULE_REFUND_SETTLEMENT = "refund-settlement-id"
RULE_REFUND_ASSET = "refund-asset"
RULE_REFUNDED_WITHOUT_REFUND = "refunded-without-refund"
RULE_IDS = (
    RULE_AMOUNTS,
    RULE_REFUND_EXCEEDS,
    RULE_REFUNDS_TOTAL,
    RULE_REFUND_SETTLEMENT,
    RULE_REFUND_ASSET,
    RULE_REFUNDED_WITHOUT_REFUND,
)
CURRENCY = "USDC"
TOLERANCE_CENTS = Decimal("0.5")
PAID_STATUSES = frozenset({"paid", "refunded", "underpaid_accepted"})

Key = tuple[str, str]  # (rule, subject id)
Difference = tuple[Key, Decimal]  # in USDC cents


def differences(
    payments: Iterable[Mapping[str, Any]], refunds: Sequence[Mapping[str, Any]]
) -> Iterator[Difference]:
    """Every checked amount difference; a check whose values are missing is skipped. Refunds
    are as served (with their embedded payment)."""
    refunds_of: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for refund in refunds:
        refunds_of[refund["payment"]["id"]].append(refund)
    for payment in payments:
        yield from _payment_amounts(payment)
        mine = refunds_of.get(payment["id"], [])
        paid = _cents(payment.get("amount_paid"))
        same_asset = [r for r in mine if r["amount"].get("asset_id") == payment.get("asset_id")]
        values = [_cents(r["amount"].get("value")) for r in same_asset]
        for refund, value in zip(same_asset, values, strict=True):
            if value is not None and paid is not None:
                yield (RULE_REFUND_EXCEEDS, refund["refund_id"]), max(value - paid, Decimal(0))
        done = [v for r, v in zip(same_asset, values, strict=True) if r["status"] == "refunded"]
        if paid is not None and len(done) >= 2 and all(v is not None and v <= paid for v in done):
            total = sum(v for v in done if v is not None)
            yield (RULE_REFUNDS_TOTAL, payment["id"]), max(total - paid, Decimal(0))


def flagged(
    payments: Iterable[Mapping[str, Any]], refunds: Sequence[Mapping[str, Any]]
) -> set[Key]:
    """Findings that are not amounts: settlement ids, assets, refunded payments."""
    by_id = {p["id"]: p for p in payments}
    found: set[Key] = set()
    for refund in refunds:
        subject = refund["refund_id"]
        settlement_id = refund.get("settlement_Id")
        has_id = isinstance(settlement_id, str) and bool(settlement_id.strip())
        if refund.get("status") == "refunded" and not has_id:
            found.add((RULE_REFUND_SETTLEMENT, subject))
        payment = by_id.get(refund["payment"]["id"])
        if payment is not None and refund["amount"].get("asset_id") != payment.get("asset_id"):
            found.add((RULE_REFUND_ASSET, subject))
    with_refund = {r["payment"]["id"] for r in refunds if r.get("status") != "failed"}
    for payment in by_id.values():
        marked = payment.get("status") == "refunded" or payment.get("refunded") is True
        if marked and payment["id"] not in with_refund:
            found.add((RULE_REFUNDED_WITHOUT_REFUND, payment["id"]))
    return found


def expected_mismatches(found: Iterable[Difference], flags: set[Key]) -> set[Key]:
    beyond = {key for key, cents in found if abs(cents) > TOLERANCE_CENTS}
    return beyond | flags


def dust_cases(found: Iterable[Difference], flags: set[Key]) -> set[Key]:
    found = list(found)
    dust = {key for key, cents in found if 0 < abs(cents) <= TOLERANCE_CENTS}
    return dust - expected_mismatches(found, flags)


def held_by_grace(flags: set[Key]) -> set[Key]:
    """The planted keys a fresh sync holds back until the refund grace has passed."""
    return {key for key in flags if key[0] == RULE_REFUNDED_WITHOUT_REFUND}


def _payment_amounts(payment: Mapping[str, Any]) -> Iterator[Difference]:
    paid, received, remaining, due = (
        _cents(payment.get(name))
        for name in ("amount_paid", "amount_received", "amount_remaining", "settlement_amount")
    )
    key = (RULE_AMOUNTS, payment["id"])
    if paid is not None and received is not None:
        yield key, paid - received
    if received is not None and remaining is not None and due is not None:
        yield key, due - received - remaining
    status = payment.get("status")
    if status in PAID_STATUSES and paid is not None and due is not None:
        accepted = remaining if status == "underpaid_accepted" else Decimal(0)
        if accepted is not None:
            yield key, due - paid - accepted


def _cents(value: Any) -> Decimal | None:
    try:
        return to_decimal(value)
    except InvalidAmount:
        return None
