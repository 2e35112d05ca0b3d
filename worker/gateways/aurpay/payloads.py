"""Aurpay payloads: typed, validated records (order, transaction, refund info) and list pages.

Pure functions over parsed JSON (``ledger.jsonx.loads``): amounts become ``Decimal`` from JSON
strings or numbers, naive timestamps are read in a configured zone and returned as UTC, and
every record keeps its raw object so the ledger stores exactly what was received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, Generic, TypeVar

from ledger.model import RawRecord, Rejected
from ledger.money import to_decimal
from worker.gateways.base import json_type

SOURCE = "aurpay"

# Documented order statuses (ORD-S); anything else is quarantined rather than guessed at.
ORDER_STATUSES = frozenset(
    {"PENDING", "OVERDUE", "SUCCESS", "RESOLVED", "PARTIAL", "TERMINATED", "REFUNDED"}
)


class InvalidRecord(ValueError):
    """One object failed validation; ``rejected`` holds its reason and raw JSON for quarantine."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(f"invalid aurpay {rejected.kind}: {rejected.reason}")
        self.rejected = rejected


class InvalidPage(ValueError):
    """A list page whose frame (page, size, total, max_page, data) is not the documented shape."""


class _FieldError(ValueError):
    pass


def _text(value: Any, naive_tz: tzinfo) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json_type(value)}")
    return value


def _flag(value: Any, naive_tz: tzinfo) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {json_type(value)}")
    return value


def _texts(value: Any, naive_tz: tzinfo) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected an array of strings")
    return tuple(value)


def _time(value: Any, naive_tz: tzinfo) -> datetime | None:
    if value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {json_type(value)}")
    return parse_time(value, naive_tz)


def parse_time(text: str, naive_tz: tzinfo = UTC) -> datetime:
    """ISO-8601 → aware UTC; a value without a zone is read as ``naive_tz`` (Aurpay sends none)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_tz)
    return moment.astimezone(UTC)


# Each record's dataclass is its schema: the annotation (a string, thanks to
# ``from __future__ import annotations``) picks the reader, and a field without a default is
# required. JSON null means absent.
_READERS: dict[str, Callable[[Any, tzinfo], Any]] = {
    "str": _text,
    "Decimal": lambda value, _tz: to_decimal(value),
    "datetime": _time,
    "bool": _flag,
    "tuple[str, ...]": _texts,
    "Any": lambda value, _tz: value,
}


@dataclass(frozen=True)
class Order:
    """An order (list item: the first 15 fields; detail and callbacks: all of them)."""

    order_id: str
    status: str
    currency: str
    amount: Decimal
    raw: Mapping[str, Any] = field(repr=False, hash=False)
    user_id: str | None = None
    order_type: str | None = None
    platform: str | None = None
    chain: str | None = None
    chain_name: str | None = None
    vs_price: Decimal | None = None
    vs_currency: str | None = None
    remark: str | None = None
    refund: bool | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    tx_id: str | None = None
    tx_type: str | None = None
    obtained: Decimal | None = None
    fee: Decimal | None = None
    from_addr: str | None = None
    to_addr: str | None = None
    tx_hash: str | None = None
    tx_hash_list: tuple[str, ...] = ()

    def to_raw_record(self) -> RawRecord:
        return RawRecord(source=SOURCE, kind="order", external_id=self.order_id, payload=self.raw)


@dataclass(frozen=True)
class Transaction:
    """A transaction-flow entry (Get Transaction); ``order_id``/``create_time`` when present."""

    tx_id: str
    status: str
    tx_type: str
    currency: str
    amount: Decimal
    raw: Mapping[str, Any] = field(repr=False, hash=False)
    user_id: str | None = None
    chain: str | None = None
    fee: Decimal | None = None
    obtained: Decimal | None = None
    order_id: str | None = None
    tx_hash: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None

    def to_raw_record(self) -> RawRecord:
        return RawRecord(
            source=SOURCE, kind="transaction", external_id=self.tx_id, payload=self.raw
        )


@dataclass(frozen=True)
class RefundInfo:
    """Refund info of one order; ``refund_et`` is kept as sent (a "timestamp" of unclear unit)."""

    order_id: str
    currency: str
    amount: Decimal
    raw: Mapping[str, Any] = field(repr=False, hash=False)
    chain: str | None = None
    network_fee: Decimal | None = None
    obtained: Decimal | None = None
    from_addr: str | None = None
    to_addr: str | None = None
    refund_et: Any = None

    def to_raw_record(self) -> RawRecord:
        return RawRecord(source=SOURCE, kind="refund", external_id=self.order_id, payload=self.raw)


R = TypeVar("R", Order, Transaction, RefundInfo)


def _build(cls: type[R], obj: Mapping[str, Any], naive_tz: tzinfo) -> R:
    values: dict[str, Any] = {}
    for spec in fields(cls):
        if spec.name == "raw":
            continue
        value = obj.get(spec.name)
        required = spec.default is MISSING and spec.default_factory is MISSING
        if required and (value is None or value == ""):
            raise _FieldError(f"{spec.name}: missing")
        if value is None:
            continue
        try:
            values[spec.name] = _READERS[str(spec.type).removesuffix(" | None")](value, naive_tz)
        except ValueError as exc:
            raise _FieldError(f"{spec.name}: {exc}") from None
    return cls(raw=obj, **values)


def _parse(cls: type[R], kind: str, id_field: str, obj: Any, naive_tz: tzinfo) -> R:
    if not isinstance(obj, Mapping):
        reason = f"expected a JSON object, got {json_type(obj)}"
        raise InvalidRecord(Rejected(source=SOURCE, kind=kind, reason=reason, raw=obj))
    try:
        record = _build(cls, obj, naive_tz)
        if isinstance(record, Order) and record.status not in ORDER_STATUSES:
            raise _FieldError(f"status: unknown status {record.status!r}")
        return record
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


def parse_order(obj: Any, naive_tz: tzinfo = UTC) -> Order:
    """Validate one order object; raises ``InvalidRecord`` (a ``ValueError``) with the reason."""
    return _parse(Order, "order", "order_id", obj, naive_tz)


def parse_transaction(obj: Any, naive_tz: tzinfo = UTC) -> Transaction:
    return _parse(Transaction, "transaction", "tx_id", obj, naive_tz)


def parse_refund_info(obj: Any, naive_tz: tzinfo = UTC) -> RefundInfo:
    return _parse(RefundInfo, "refund", "order_id", obj, naive_tz)


@dataclass(frozen=True)
class Page(Generic[R]):
    """One list page: the valid records and, apart, the items that failed validation."""

    page: int
    size: int
    total: int
    max_page: int
    records: tuple[R, ...]
    rejected: tuple[Rejected, ...]

    @property
    def empty(self) -> bool:
        return not self.records and not self.rejected


def _page_int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPage(f"page field {name}: expected an integer, got {json_type(value)}")
    return value


def parse_page(
    data: Any, parse_item: Callable[[Any, tzinfo], R], naive_tz: tzinfo = UTC
) -> Page[R]:
    """Parse the envelope's ``data`` of a list endpoint; bad items become ``Rejected``."""
    if not isinstance(data, Mapping):
        raise InvalidPage(f"page: expected a JSON object, got {json_type(data)}")
    items = data.get("data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InvalidPage(f"page field data: expected an array, got {json_type(items)}")
    records: list[R] = []
    rejected: list[Rejected] = []
    for item in items:
        try:
            records.append(parse_item(item, naive_tz))
        except InvalidRecord as exc:
            rejected.append(exc.rejected)
    return Page(
        page=_page_int(data, "page"),
        size=_page_int(data, "size"),
        total=_page_int(data, "total"),
        max_page=_page_int(data, "max_page"),
        records=tuple(records),
        rejected=tuple(rejected),
    )
