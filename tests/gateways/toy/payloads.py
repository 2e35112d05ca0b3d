"""Toy payloads: typed, validated invoices, credits and settlements (the toy server's schema).

Amounts are exact JSON numbers in whole units of a currency code; times are ISO-8601. Every
record keeps its raw object for the ledger, as the real gateways' payloads do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from worker.gateways.base.records import (
    FieldError,
    GatewayRecord,
    json_type,
    parse_record,
    parse_time,
    read_amount,
    read_code,
    read_id,
)
from worker.gateways.base.records import InvalidRecord as InvalidRecord  # what parsers raise

SOURCE = "toy"
INVOICE_STATUSES = frozenset({"open", "paid", "void"})


def _read(obj: Mapping[str, Any], name: str, read: Callable[[Any], Any]) -> Any:
    """``read(obj[name])``; a missing value or a ``ValueError`` becomes the field's error."""
    value = obj.get(name)
    if value is None:
        raise FieldError(f"{name}: missing")
    try:
        return read(value)
    except ValueError as exc:
        raise FieldError(f"{name}: {exc}") from None


def _status(value: Any) -> str:
    if not isinstance(value, str) or value not in INVOICE_STATUSES:
        raise ValueError(f"unknown status {value!r}")
    return value


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {json_type(value)}")
    return parse_time(value)


@dataclass(frozen=True)
class Invoice(GatewayRecord):
    """An invoice: ``amount`` is due in ``currency``; once paid the gateway keeps ``fee``."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "invoice"

    invoice_id: str
    status: str
    currency: str
    amount: Decimal
    fee: Decimal
    created_at: datetime

    @property
    def external_id(self) -> str:
        return self.invoice_id


@dataclass(frozen=True)
class Credit(GatewayRecord):
    """A credit note: ``amount`` of an invoice given back to the customer."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "credit"

    credit_id: str
    invoice_id: str
    currency: str
    amount: Decimal
    created_at: datetime

    @property
    def external_id(self) -> str:
        return self.credit_id


@dataclass(frozen=True)
class Settlement(GatewayRecord):
    """The payout of a paid invoice's ``net`` to the merchant (its id is the invoice's)."""

    source: ClassVar[str] = SOURCE
    kind: ClassVar[str] = "settlement"

    invoice_id: str
    currency: str
    net: Decimal
    settled_at: datetime

    @property
    def external_id(self) -> str:
        return self.invoice_id


def _build_invoice(obj: Mapping[str, Any]) -> Invoice:
    return Invoice(
        raw=obj,
        invoice_id=_read(obj, "id", read_id),
        status=_read(obj, "status", _status),
        currency=_read(obj, "currency", read_code),
        amount=_read(obj, "amount", read_amount),
        fee=_read(obj, "fee", read_amount),
        created_at=_read(obj, "created_at", _time),
    )


def _build_credit(obj: Mapping[str, Any]) -> Credit:
    return Credit(
        raw=obj,
        credit_id=_read(obj, "id", read_id),
        invoice_id=_read(obj, "invoice_id", read_id),
        currency=_read(obj, "currency", read_code),
        amount=_read(obj, "amount", read_amount),
        created_at=_read(obj, "created_at", _time),
    )


def _build_settlement(obj: Mapping[str, Any]) -> Settlement:
    return Settlement(
        raw=obj,
        invoice_id=_read(obj, "invoice_id", read_id),
        currency=_read(obj, "currency", read_code),
        net=_read(obj, "net", read_amount),
        settled_at=_read(obj, "settled_at", _time),
    )


def parse_invoice(obj: Any) -> Invoice:
    return parse_record(Invoice, _build_invoice, obj, "id")


def parse_credit(obj: Any) -> Credit:
    return parse_record(Credit, _build_credit, obj, "id")


def parse_settlement(obj: Any) -> Settlement:
    return parse_record(Settlement, _build_settlement, obj, "invoice_id")
