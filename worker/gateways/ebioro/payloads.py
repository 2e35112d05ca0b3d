"""Ebioro payloads: typed, validated payments and refunds, and list pages (ebioro-api.md §5, §6).

Pure functions over parsed JSON (``ledger.jsonx.loads``). Amounts stay as sent, exact: the
fiat price as integer minor units with its currency, settlement amounts as ``Decimal`` USDC
cents (fractional fees occur: ``66.575``). ISO-8601 times become aware UTC, ``history[].time``
(epoch milliseconds) too. Every record keeps its raw object for the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from ledger.journal.postings import parse_amount
from ledger.model import RawRecord, Rejected
from ledger.money import InvalidAmount
from ledger.precision import FIAT_MINOR_UNITS
from worker.gateways.base import json_type

SOURCE = "ebioro"

# The union of documented and plugin-observed statuses (§9); anything else is quarantined
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


class InvalidRecord(ValueError):
    """One object failed validation; ``rejected`` holds its reason and raw JSON for quarantine."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(f"invalid ebioro {rejected.kind}: {rejected.reason}")
        self.rejected = rejected


class _FieldError(ValueError):
    pass


def _field(obj: Mapping[str, Any], name: str, required: bool, path: str = "") -> Any:
    """``obj[name]``; JSON null counts as absent. Raises when a required one is missing."""
    value = obj.get(name)
    if required and (value is None or value == ""):
        raise _FieldError(f"{path}{name}: missing")
    return value


def _text(obj: Mapping[str, Any], name: str, required: bool = False, path: str = "") -> Any:
    value = _field(obj, name, required, path)
    if value is not None and not isinstance(value, str):
        raise _FieldError(f"{path}{name}: expected a string, got {json_type(value)}")
    return value


def _object(obj: Mapping[str, Any], name: str, path: str = "") -> Mapping[str, Any]:
    value = _field(obj, name, True, path)
    if not isinstance(value, Mapping):
        raise _FieldError(f"{path}{name}: expected an object, got {json_type(value)}")
    return value


def _cents(obj: Mapping[str, Any], name: str, required: bool = False, path: str = "") -> Any:
    """A non-negative amount in an asset's minor units (USDC cents), exact; None if absent."""
    value = _field(obj, name, required, path)
    if value is None:
        return None
    try:
        amount = parse_amount(value)
    except InvalidAmount as exc:
        raise _FieldError(f"{path}{name}: {exc}") from None
    if amount < 0:
        raise _FieldError(f"{path}{name}: negative amount {value!r}")
    return amount


def _time(obj: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO-8601 timestamp as aware UTC (§8: UTC with ms); a zone-less value is read as UTC."""
    value = _text(obj, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _FieldError(f"{name}: not an ISO-8601 time: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _flag(obj: Mapping[str, Any], name: str) -> bool | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise _FieldError(f"{name}: expected a boolean, got {json_type(value)}")
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
        raise _FieldError(f"amount.currency: unsupported fiat currency {currency!r} ({known})")
    minor = _field(amount, "value", True, "amount.")
    if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
        got = repr(minor) if isinstance(minor, int | Decimal) else json_type(minor)
        raise _FieldError(f"amount.value: expected a whole number of minor units, got {got}")
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
        raise _FieldError(f"history: expected an array, got {json_type(items)}")
    events = []
    for index, item in enumerate(items):
        path = f"history[{index}]."
        if not isinstance(item, Mapping):
            raise _FieldError(f"history[{index}]: expected an object, got {json_type(item)}")
        millis = _field(item, "time", True, path)
        if isinstance(millis, bool) or not isinstance(millis, int):
            raise _FieldError(f"{path}time: expected epoch milliseconds, got {json_type(millis)}")
        when = _EPOCH + timedelta(milliseconds=millis)
        events.append(HistoryEvent(when, _text(item, "status"), _text(item, "description")))
    return tuple(events)


@dataclass(frozen=True)
class Payment:
    """A payment object (§5.2). USDC amounts are in USDC cents, exactly as sent."""

    payment_id: str
    status: str
    amount: FiatAmount
    raw: Mapping[str, Any] = field(repr=False, hash=False)
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

    def to_raw_record(self) -> RawRecord:
        return RawRecord(SOURCE, "payment", self.payment_id, self.raw)


def _build_payment(obj: Mapping[str, Any]) -> Payment:
    status = _text(obj, "status", True)
    if status not in PAYMENT_STATUSES:
        raise _FieldError(f"status: unknown status {status!r}")
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
        payment_id=_text(obj, "id", True),
        status=status,
        amount=_fiat(obj),
        raw=obj,
        settlement_status=_text(obj, "settlement_status"),
        created_at=_time(obj, "createdAt"),
        updated_at=_time(obj, "updatedAt"),
        expires_at=_time(obj, "expiresAt"),
        mode=_text(obj, "mode"),
        settlement_currency=_text(obj, "settlement_currency"),
        asset_id=_text(obj, "asset_id"),
        refunded=_flag(obj, "refunded"),
        sender_account=_text(obj, "sender_account"),
        history=_history(obj),
        **cents,
    )


@dataclass(frozen=True)
class Refund:
    """A refund object (§5.4): ``amount`` in the asset's minor units (USDC cents, inferred)
    of ``asset_id`` (``CODE:ISSUER``); ``payment_id`` from the embedded payment."""

    refund_id: str
    status: str
    asset_id: str
    amount: Decimal
    payment_id: str
    raw: Mapping[str, Any] = field(repr=False, hash=False)
    settlement_id: str | None = None
    description: str | None = None

    @property
    def asset_code(self) -> str:
        return self.asset_id.split(":", 1)[0]

    def to_raw_record(self) -> RawRecord:
        return RawRecord(SOURCE, "refund", self.refund_id, self.raw)


def _build_refund(obj: Mapping[str, Any]) -> Refund:
    status = _text(obj, "status", True)
    if status not in REFUND_STATUSES:
        raise _FieldError(f"status: unknown status {status!r}")
    amount = _object(obj, "amount")
    # The embedded payment is kept in raw as sent; only its id is needed to link the two.
    payment = _object(obj, "payment")
    return Refund(
        refund_id=_text(obj, "refund_id", True),
        status=status,
        asset_id=_text(amount, "asset_id", True, "amount."),
        amount=_cents(amount, "value", True, "amount."),
        payment_id=_text(payment, "id", True, "payment."),
        raw=obj,
        settlement_id=_text(obj, "settlement_Id"),  # capital I, as documented
        description=_text(obj, "description"),
    )


R = TypeVar("R", Payment, Refund)


def _parse(build: Callable[[Mapping[str, Any]], R], kind: str, id_field: str, obj: Any) -> R:
    if not isinstance(obj, Mapping):
        reason = f"expected a JSON object, got {json_type(obj)}"
        raise InvalidRecord(Rejected(source=SOURCE, kind=kind, reason=reason, raw=obj))
    try:
        return build(obj)
    except _FieldError as exc:
        external_id = obj.get(id_field)
        rejected = Rejected(
            source=SOURCE,
            kind=kind,
            reason=str(exc),
            raw=obj,
            external_id=external_id if isinstance(external_id, str) else None,
        )
        raise InvalidRecord(rejected) from None


def parse_payment(obj: Any) -> Payment:
    """Validate one payment object; raises ``InvalidRecord`` (a ``ValueError``) with the reason."""
    return _parse(_build_payment, "payment", "id", obj)


def parse_refund(obj: Any) -> Refund:
    """Validate one refund object; raises ``InvalidRecord`` with the reason."""
    return _parse(_build_refund, "refund", "refund_id", obj)
