"""Ebioro payloads: typed, validated payments and refunds (docs/gateways/ebioro.md, "Payment
object", "Refunds").

Pure functions over parsed JSON (``ledger.jsonx.loads``). Amounts stay as sent, exact: the
fiat price as integer minor units with its currency, settlement amounts as ``Decimal`` USDC
cents (fractional fees occur: ``66.575``). ISO-8601 times become aware UTC, ``history[].time``
(epoch milliseconds) too. Every record keeps its raw object for the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from ledger.precision import FIAT_MINOR_UNITS
from worker.gateways.base.records import (
    FieldError,
    GatewayRecord,
    json_type,
    known_status,
    parse_record,
    parse_time,
    read_amount,
    read_code,
    read_id,
)
from worker.gateways.base.records import InvalidRecord as InvalidRecord  # what parsers raise

SOURCE = "ebioro"

# The union of documented and plugin-observed statuses (docs/gateways/ebioro.md (E-STAT-1));
# anything else is quarantined
# rather than guessed at (e.g. "cancelled": the provider spells it with one l).
PAYMENT_STATUSES = frozenset(
    {
        "open",
        "processing",
        "paid",
        "underpaid",
        "underpaid_accepted",
        "expired",
        "canceled",
        "failed",
        "refunded",
    }
)
REFUND_STATUSES = frozenset({"open", "processing", "refunded", "failed"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _field(obj: Mapping[str, Any], name: str, required: bool, path: str = "") -> Any:
    """``obj[name]``; JSON null counts as absent. Raises when a required one is missing."""
    value = obj.get(name)
    if required and (value is None or value == ""):
        raise FieldError(f"{path}{name}: missing")
    return value


def _text(obj: Mapping[str, Any], name: str, required: bool = False, path: str = "") -> Any:
    value = _field(obj, name, required, path)
    if value is not None and not isinstance(value, str):
        raise FieldError(f"{path}{name}: expected a string, got {json_type(value)}")
    return value


def _checked(
    obj: Mapping[str, Any], name: str, read: Callable[[Any], Any], required: bool, path: str
) -> Any:
    """``read(obj[name])``, None when absent; a ``ValueError`` becomes the field's error."""
    value = _field(obj, name, required, path)
    if value is None:
        return None
    try:
        return read(value)
    except ValueError as exc:
        raise FieldError(f"{path}{name}: {exc}") from None


def _id(obj: Mapping[str, Any], name: str, required: bool = False, path: str = "") -> Any:
    """An object id (bounded by the ledger's columns: ``read_id``)."""
    return _checked(obj, name, read_id, required, path)


def _code(obj: Mapping[str, Any], name: str) -> Any:
    """A currency code, posted as a commodity (``read_code``)."""
    return _checked(obj, name, read_code, False, "")


def _asset(obj: Mapping[str, Any], name: str, required: bool = False, path: str = "") -> Any:
    """A Stellar asset ``CODE:ISSUER``: its code is posted as a commodity, and the whole id when
    it is not the payment's own asset, so both must be currency codes (docs/gateways/ebioro.md
    (E-PAY-3))."""

    def read(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {json_type(value)}")
        read_code(value.split(":", 1)[0])
        read_code(value)
        return value

    return _checked(obj, name, read, required, path)


def _object(obj: Mapping[str, Any], name: str, path: str = "") -> Mapping[str, Any]:
    value = _field(obj, name, True, path)
    if not isinstance(value, Mapping):
        raise FieldError(f"{path}{name}: expected an object, got {json_type(value)}")
    return value


def _cents(obj: Mapping[str, Any], name: str, required: bool = False, path: str = "") -> Any:
    """A non-negative amount in an asset's minor units (USDC cents), exact; None if absent.

    Never negative: amounts due, paid, received and remaining, a fee, a refund
    (inferred from docs/gateways/ebioro.md (E-AMT-2, E-AMT-3, E-AMT-4, E-AMT-5)).
    """
    return _checked(obj, name, read_amount, required, path)


def _time(obj: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO-8601 timestamp as aware UTC (docs/gateways/ebioro.md (E-TIME-1): UTC with ms); a
    zone-less value is read as UTC."""
    value = _text(obj, name)
    return None if value is None else _checked(obj, name, parse_time, False, "")


def _flag(obj: Mapping[str, Any], name: str) -> bool | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise FieldError(f"{name}: expected a boolean, got {json_type(value)}")
    return value


@dataclass(frozen=True)
class FiatAmount:
    """The requested price: ``minor`` units of ``currency`` (1000 USD = 10.00 USD)."""

    currency: str
    minor: int

    @property
    def value(self) -> Decimal:
        return Decimal(self.minor).scaleb(-FIAT_MINOR_UNITS[self.currency])


def _fiat(obj: Mapping[str, Any]) -> FiatAmount:
    amount = _object(obj, "amount")
    currency = _text(amount, "currency", True, "amount.")
    if currency not in FIAT_MINOR_UNITS:
        known = ", ".join(sorted(FIAT_MINOR_UNITS))
        raise FieldError(f"amount.currency: unsupported fiat currency {currency!r} ({known})")
    minor = _field(amount, "value", True, "amount.")
    # A whole, non-negative number of minor units (docs/gateways/ebioro.md (E-AMT-1)).
    if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
        got = repr(minor) if isinstance(minor, int | Decimal) else json_type(minor)
        raise FieldError(f"amount.value: expected a whole number of minor units, got {got}")
    _checked(amount, "value", read_amount, True, "amount.")  # the journal's sanity range
    return FiatAmount(currency, minor)


@dataclass(frozen=True)
class HistoryEvent:
    time: datetime
    status: str | None = None
    description: str | None = None


def _history(obj: Mapping[str, Any]) -> tuple[HistoryEvent, ...]:
    items = obj.get("history")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise FieldError(f"history: expected an array, got {json_type(items)}")
    events = []
    for index, item in enumerate(items):
        path = f"history[{index}]."
        if not isinstance(item, Mapping):
            raise FieldError(f"history[{index}]: expected an object, got {json_type(item)}")
        millis = _field(item, "time", True, path)
        if isinstance(millis, bool) or not isinstance(millis, int):
            raise FieldError(f"{path}time: expected epoch milliseconds, got {json_type(millis)}")
        try:  # epoch milliseconds (docs/gateways/ebioro.md (E-TIME-2)), within datetime's range
            when = _EPOCH + timedelta(milliseconds=millis)
        except OverflowError:
            raise FieldError(f"{path}time: {millis} ms is out of range") from None
        events.append(HistoryEvent(when, _text(item, "status"), _text(item, "description")))
    return tuple(events)


@dataclass(frozen=True)
class Payment(GatewayRecord):
    """A payment object (docs/gateways/ebioro.md (E-PAY-1)). USDC amounts are in USDC cents,
    exactly as sent."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "payment"

    payment_id: str
    status: str
    amount: FiatAmount
    settlement_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    mode: str | None = None
    settlement_currency: str | None = None
    settlement_amount: Decimal | None = None
    settlement_fee: Decimal | None = None
    amount_paid: Decimal | None = None
    amount_received: Decimal | None = None
    amount_remaining: Decimal | None = None
    asset_id: str | None = None
    refunded: bool | None = None
    sender_account: str | None = None
    history: tuple[HistoryEvent, ...] = ()

    @property
    def external_id(self) -> str:
        return self.payment_id


def _build_payment(obj: Mapping[str, Any]) -> Payment:
    status = known_status(_text(obj, "status", True), PAYMENT_STATUSES)
    cents = {
        name: _cents(obj, name)
        for name in (
            "settlement_amount",
            "settlement_fee",
            "amount_paid",
            "amount_received",
            "amount_remaining",
        )
    }
    return Payment(
        payment_id=_id(obj, "id", True),
        status=status,
        amount=_fiat(obj),
        raw=obj,
        settlement_status=_text(obj, "settlement_status"),
        created_at=_time(obj, "createdAt"),
        updated_at=_time(obj, "updatedAt"),
        expires_at=_time(obj, "expiresAt"),
        mode=_text(obj, "mode"),
        settlement_currency=_code(obj, "settlement_currency"),
        asset_id=_asset(obj, "asset_id"),
        refunded=_flag(obj, "refunded"),
        sender_account=_text(obj, "sender_account"),
        history=_history(obj),
        **cents,
    )


@dataclass(frozen=True)
class Refund(GatewayRecord):
    """A refund object (docs/gateways/ebioro.md (E-REF-1)): ``amount`` in the asset's minor units
    (USDC cents, inferred)
    of ``asset_id`` (``CODE:ISSUER``); ``payment_id`` from the embedded payment."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "refund"

    refund_id: str
    status: str
    asset_id: str
    amount: Decimal
    payment_id: str
    settlement_id: str | None = None
    description: str | None = None

    @property
    def asset_code(self) -> str:
        return self.asset_id.split(":", 1)[0]

    @property
    def external_id(self) -> str:
        return self.refund_id


def _build_refund(obj: Mapping[str, Any]) -> Refund:
    status = known_status(_text(obj, "status", True), REFUND_STATUSES)
    amount = _object(obj, "amount")
    # The embedded payment is kept in raw as sent; only its id is needed to link the two.
    payment = _object(obj, "payment")
    return Refund(
        refund_id=_id(obj, "refund_id", True),
        status=status,
        asset_id=_asset(amount, "asset_id", True, "amount."),
        amount=_cents(amount, "value", True, "amount."),
        payment_id=_id(payment, "id", True, "payment."),
        raw=obj,
        settlement_id=_text(obj, "settlement_Id"),  # capital I, as documented
        description=_text(obj, "description"),
    )


def parse_payment(obj: Any) -> Payment:
    """Validate one payment object; raises ``InvalidRecord`` (a ``ValueError``) with the reason."""
    return parse_record(Payment, _build_payment, obj, "id")


def parse_refund(obj: Any) -> Refund:
    """Validate one refund object; raises ``InvalidRecord`` with the reason."""
    return parse_record(Refund, _build_refund, obj, "refund_id")
