"""Aurpay payloads: typed, validated records (order, transaction, refund info).

Pure functions over parsed JSON (``ledger.jsonx.loads``): amounts become ``Decimal`` from JSON
strings or numbers, naive timestamps are read in a configured zone and returned as UTC, and
every record keeps its raw object so the ledger stores exactly what was received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeAlias, TypeVar

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

SOURCE = "aurpay"

# Documented order statuses (ORD-S); anything else is quarantined rather than guessed at.
ORDER_STATUSES = frozenset(
    {"PENDING", "OVERDUE", "SUCCESS", "RESOLVED", "PARTIAL", "TERMINATED", "REFUNDED"}
)

# What the annotations below mean beyond their Python type (each picks its reader):
Id: TypeAlias = str  # an object id, bounded by the ledger's columns (``read_id``)
Code: TypeAlias = str  # a currency code, posted as a commodity (``read_code``)
# Never negative: an amount due, a price, a fee, what was obtained. The docs show no sign
# convention for these (inferred from docs/gateways/aurpay.md (A-AMT-2, A-AMT-3, A-REF-2)).
Amount: TypeAlias = Decimal
# Either sign: a transaction-flow entry may be a withdrawal, which lowers the balance, and the
# docs do not say whether its amount is then sent negative (docs/gateways/aurpay.md (A-STAT-7)).
SignedAmount: TypeAlias = Decimal


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
    """Naive ISO-8601 read in ``naive_tz`` (docs/gateways/aurpay.md (A-TIME-1)); "" is absent."""
    if value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {json_type(value)}")
    return parse_time(value, naive_tz)


# Each record's dataclass is its schema: the annotation (a string, thanks to
# ``from __future__ import annotations``) picks the reader, and a field without a default is
# required. JSON null means absent.
_READERS: dict[str, Callable[[Any, tzinfo], Any]] = {
    "str": _text,
    "Id": lambda value, _tz: read_id(value),
    "Code": lambda value, _tz: read_code(value),
    "Amount": lambda value, _tz: read_amount(value),
    "SignedAmount": lambda value, _tz: read_amount(value, signed=True),
    "datetime": _time,
    "bool": _flag,
    "tuple[str, ...]": _texts,
    "Any": lambda value, _tz: value,
}


@dataclass(frozen=True)
class Order(GatewayRecord):
    """An order (list item: the first 15 fields; detail and callbacks: all of them)."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "order"

    order_id: Id
    status: str
    currency: Code
    amount: Amount
    user_id: str | None = None
    order_type: str | None = None
    platform: str | None = None
    chain: str | None = None
    chain_name: str | None = None
    vs_price: Amount | None = None
    vs_currency: str | None = None
    remark: str | None = None
    refund: bool | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    tx_id: Id | None = None  # names the order's transaction (a reconcile link)
    tx_type: str | None = None
    obtained: Amount | None = None
    fee: Amount | None = None
    from_addr: str | None = None
    to_addr: str | None = None
    tx_hash: str | None = None
    tx_hash_list: tuple[str, ...] = ()

    @property
    def external_id(self) -> str:
        return self.order_id


@dataclass(frozen=True)
class Transaction(GatewayRecord):
    """A transaction-flow entry (Get Transaction); ``order_id``/``create_time`` when present."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "transaction"

    tx_id: Id
    status: str
    tx_type: str
    currency: Code
    amount: SignedAmount
    user_id: str | None = None
    chain: str | None = None
    fee: Amount | None = None
    obtained: SignedAmount | None = None
    order_id: Id | None = None
    tx_hash: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def external_id(self) -> str:
        return self.tx_id


@dataclass(frozen=True)
class RefundInfo(GatewayRecord):
    """Refund info of one order; ``refund_et`` is kept as sent (a "timestamp" of unclear unit)."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "refund"

    order_id: Id
    currency: Code
    amount: Amount
    chain: str | None = None
    network_fee: Amount | None = None
    obtained: Amount | None = None
    from_addr: str | None = None
    to_addr: str | None = None
    refund_et: Any = None

    @property
    def external_id(self) -> str:
        return self.order_id


Record = TypeVar("Record", Order, Transaction, RefundInfo)


@cache
def _schema(cls: type[GatewayRecord]) -> tuple[tuple[str, bool, Callable[[Any, tzinfo], Any]], ...]:
    """(field, required, reader) of each field but ``raw``: read from the dataclass once."""
    return tuple(
        (
            spec.name,
            spec.default is MISSING and spec.default_factory is MISSING,
            _READERS[str(spec.type).removesuffix(" | None")],
        )
        for spec in fields(cls)
        if spec.name != "raw"
    )


def _build(cls: type[Record], obj: Mapping[str, Any], naive_tz: tzinfo) -> Record:
    values: dict[str, Any] = {}
    for name, required, reader in _schema(cls):
        value = obj.get(name)
        if required and (value is None or value == ""):
            raise FieldError(f"{name}: missing")
        if value is None:
            continue
        try:
            values[name] = reader(value, naive_tz)
        except ValueError as exc:
            raise FieldError(f"{name}: {exc}") from None
    return cls(raw=obj, **values)


def _build_order(obj: Mapping[str, Any], naive_tz: tzinfo) -> Order:
    order = _build(Order, obj, naive_tz)
    known_status(order.status, ORDER_STATUSES)
    return order


def parse_order(obj: Any, naive_tz: tzinfo = UTC) -> Order:
    """Validate one order object; raises ``InvalidRecord`` (a ``ValueError``) with the reason."""
    return parse_record(Order, lambda o: _build_order(o, naive_tz), obj, "order_id")


def parse_transaction(obj: Any, naive_tz: tzinfo = UTC) -> Transaction:
    return parse_record(Transaction, lambda o: _build(Transaction, o, naive_tz), obj, "tx_id")


def parse_refund_info(obj: Any, naive_tz: tzinfo = UTC) -> RefundInfo:
    return parse_record(RefundInfo, lambda o: _build(RefundInfo, o, naive_tz), obj, "order_id")
