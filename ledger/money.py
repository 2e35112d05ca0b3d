"""Exact money values: parse provider amounts into ``Decimal`` and format them back.

Accepts what JSON gives (``str``, ``int``, ``Decimal``) and refuses ``float`` outright, so a
binary float can never sneak into an amount.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext
from typing import Any


class InvalidAmount(ValueError):
    """A value that is not an exact, finite decimal amount."""


def to_decimal(value: Any) -> Decimal:
    """Parse an amount from a JSON string, JSON number (``Decimal``/``int``) or ``Decimal``."""
    if isinstance(value, bool) or value is None:
        raise InvalidAmount(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidAmount("empty amount")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise InvalidAmount(f"not a decimal amount: {value!r}") from None
    else:
        # float included on purpose: by the time a float exists, the digits are already lost.
        kind = type(value).__name__
        raise InvalidAmount(f"amount must be a decimal string or JSON number, got {kind}")
    if not result.is_finite():
        raise InvalidAmount(f"amount is not finite: {value!r}")
    return result


def fmt(amount: Decimal) -> str:
    """Canonical decimal string: plain notation, no exponent, no trailing zeros ("0" for zero)."""
    if amount == 0:
        return "0"
    # normalize() rounds to the context's precision (28 digits by default): widen it so an
    # 18-decimal amount with a large integer part keeps every digit.
    return format(amount.normalize(Context(prec=len(amount.as_tuple().digits) + 1)), "f")


# Python's default context keeps 28 significant digits: an 18-decimal token amount with ten
# integer digits, or a fee sent with extra digits, would be rounded silently. Addition,
# subtraction, negation and abs are exact under this context (digits grow only as needed).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


@contextmanager
def exact_arithmetic() -> Iterator[None]:
    """Run money arithmetic without any rounding (see ``_EXACT``)."""
    with localcontext(_EXACT):
        yield
