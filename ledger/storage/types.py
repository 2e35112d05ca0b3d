"""Column types that keep money exact and time in UTC on both PostgreSQL and SQLite.

``Money`` is NUMERIC(66,36) on PostgreSQL and TEXT on SQLite (never REAL); it binds only
``Decimal``. ``UTCDateTime`` is timestamptz on PostgreSQL and fixed-width ISO text on SQLite
(so text order is time order); it refuses naive datetimes and always returns aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from ledger.chain import iso_utc
from ledger.errors import InexactAmount
from ledger.money import fmt

# NUMERIC(66, 36): providers send fees with more digits than the chain (an 18-decimal token's
# fee with 21 places occurs), and a ledger that cannot store what it was sent is not exact.
MAX_PLACES = 36
MAX_INTEGER_DIGITS = 30
PRECISION = MAX_PLACES + MAX_INTEGER_DIGITS


def check_amount(value: object) -> Decimal:
    """Return ``value`` if the ledger can store and hash it exactly, else raise.

    ``TypeError`` for anything but ``Decimal`` (a float has lost its digits already);
    ``InexactAmount`` for non-finite values and values NUMERIC(66,36) cannot hold exactly.
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise InexactAmount(f"amount {value} is not finite")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    # The common case, checked cheaply: ≤ 18 places, ≤ 20 integer digits, ≤ 28 digits in all
    # (fmt() normalises in the default 28-digit context, exact up to there).
    places_ok = exponent >= -MAX_PLACES
    if places_ok and len(digits) <= 28 and len(digits) + exponent <= MAX_INTEGER_DIGITS:
        return value
    # Trailing zeros after the point are not precision: 1.500 has one place.
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    places = 0 if not any(digits) else max(0, -exponent)
    if places > MAX_PLACES:
        raise InexactAmount(
            f"amount {value} has {places} decimal places; the ledger stores at most {MAX_PLACES}"
        )
    if len(digits) + exponent > MAX_INTEGER_DIGITS and any(digits):
        raise InexactAmount(f"amount {value} has more than {MAX_INTEGER_DIGITS} integer digits")
    if Decimal(fmt(value)) != value:
        raise InexactAmount(f"amount {value} cannot be formatted exactly for the hash chain")
    return value


class Money(TypeDecorator[Decimal]):
    impl = Numeric(PRECISION, MAX_PLACES, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(PRECISION, MAX_PLACES, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = check_amount(value)
        return fmt(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # One shape on both databases: PostgreSQL pads to 36 places, SQLite keeps fmt() text.
        return Decimal(fmt(Decimal(value)))


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(27))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        text = iso_utc(value)  # also refuses naive datetimes
        return text if dialect.name == "sqlite" else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).astimezone(UTC)
        moment: datetime = value  # not text, so the driver's DateTime(timezone=True) value
        return moment.astimezone(UTC)
