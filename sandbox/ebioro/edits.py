"""Validation of the admin API's arguments and field changes, before the world applies them.

Each function returns the value to store or raises ``SandboxError`` (HTTP 400) or ``Conflict``
(409) saying why.
Amounts keep what JSON gave (``int`` or exact ``Decimal``), never a float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from random import Random
from typing import Any

from ledger.money import InvalidAmount, to_decimal
from sandbox.ebioro.generate import REFUND_PLANTS, STATUS_WEIGHTS
from sandbox.kit.errors import Conflict, SandboxError

# Statuses an admin change may set: the documented and plugin-observed ones
# (docs/gateways/ebioro.md (E-STAT-1)).
PAYMENT_STATUSES = frozenset({*STATUS_WEIGHTS, "underpaid_accepted", "failed"})
SETTLEMENT_STATUSES = frozenset({"open", "processing", "paid"})
REFUND_STATUSES = frozenset({"open", "processing", "refunded", "failed"})
PAYMENT_AMOUNTS = (
    "settlement_amount",
    "settlement_fee",
    "amount_paid",
    "amount_received",
    "amount_remaining",
)


def whole(name: str, value: Any, low: int, high: int | Decimal) -> int:
    """An integer in [low, high] (counts and cents)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SandboxError(f"{name} must be an integer between {low} and {high}")
    return value


def choice(name: str, value: Any, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise SandboxError(f"{name} must be one of {sorted(allowed)}")
    return str(value)


def refund_plant(mismatch: Any) -> str | None:
    """``false`` (none), ``true`` (= "exceeds") or one of the refund plants."""
    if mismatch is False or mismatch is None:
        return None
    if mismatch is True:
        return "exceeds"
    return choice("mismatch", mismatch, REFUND_PLANTS)


def refund_value(
    paid: int | Decimal,
    refunds: Sequence[Mapping[str, Any]],
    value: Any,
    plant: str | None,
    rng: Random,
) -> int | Decimal:
    """The value of a new refund of a payment that has ``refunds``: at most what is left of
    ``paid`` (the default), one refund in progress at a time (both documented,
    docs/gateways/ebioro.md (E-REF-3)); with
    ``plant`` "total", 2-49 cents more than what is left but no more than ``paid``. Amounts are
    cents as the world holds them: ``int``, or a ``Decimal`` an admin change set."""
    if any(refund["status"] in ("open", "processing") for refund in refunds):
        raise Conflict("payment has a refund in progress (one at a time, documented)")
    counted = (r["amount"]["value"] for r in refunds if r["status"] != "failed")
    left: int | Decimal = paid - sum(counted)  # refund values are int or Decimal, like paid
    if plant == "total":
        if paid - left < 2:
            raise Conflict("mismatch total needs an earlier refund of at least 2 cents")
        # whole cents: randrange refuses a Decimal (Python 3.12+), even an integral one
        return left + rng.randrange(2, min(50, int(paid - left) + 1))
    if left < 1:
        raise Conflict("nothing left to refund")
    return left if value is None else whole("value", value, 1, left)


def amount(name: str, value: Any) -> int | Decimal:
    """A non-negative amount as JSON gave it: an ``int`` or an exact ``Decimal``."""
    try:
        exact = to_decimal(value)
    except InvalidAmount as exc:
        raise SandboxError(f"{name}: {exc}") from None
    if exact < 0 or isinstance(value, str):
        raise SandboxError(f"{name} must be a non-negative JSON number")
    return value if isinstance(value, int) else exact


def payment_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validated payment field changes (a silent correction by the provider)."""
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name in PAYMENT_AMOUNTS:
            checked[name] = amount(name, value)
        elif name == "status":
            checked[name] = choice(name, value, PAYMENT_STATUSES)
        elif name == "settlement_status":
            checked[name] = choice(name, value, SETTLEMENT_STATUSES)
        elif name == "refunded" and isinstance(value, bool):
            checked[name] = value
        else:
            raise SandboxError(f"cannot set payment field {name!r} to {value!r}")
    return checked


def refund_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validated refund field changes; ``amount`` may give ``value`` and/or ``asset_id``."""
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "status":
            checked[name] = choice(name, value, REFUND_STATUSES)
        elif name in ("settlement_Id", "description") and _text_or_null(name, value):
            checked[name] = value
        elif name == "metadata" and isinstance(value, Mapping):
            checked[name] = dict(value)
        elif name == "amount" and isinstance(value, Mapping) and value:
            checked[name] = _refund_amount(value)
        else:
            raise SandboxError(f"cannot set refund field {name!r} to {value!r}")
    return checked


def _refund_amount(value: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, part in value.items():
        if name == "value":
            checked[name] = amount("amount.value", part)
        elif name == "asset_id" and isinstance(part, str) and part:
            checked[name] = part
        else:
            raise SandboxError(f"cannot set refund field amount.{name} to {part!r}")
    return checked


def _text_or_null(name: str, value: Any) -> bool:
    """A string; ``settlement_Id`` may also be null (no settlement yet)."""
    return isinstance(value, str) or (name == "settlement_Id" and value is None)
