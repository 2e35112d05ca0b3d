"""Exact money values: parse provider amounts into ``Decimal`` and format them back.

Accepts what JSON gives (``str``, ``int``, ``Decimal``) and refuses ``float`` outright, so a
binary float can never sneak into an amount. Text must match ``NUMBER``, the one grammar.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext
from typing import Any


class InvalidAmount(ValueError):
    """A value that is not an exact, finite decimal amount."""


# The grammar of an amount sent as text: an optional sign, ASCII digits, optionally a point
# followed by digits, optionally an exponent (the gateways send ``1.496e-05``). ``Decimal()``
# alone is far looser: it takes "１２３" (any Unicode digit), "1_000", " 1.5 ", "1.", "NaN" and
# "Infinity", none of which a gateway means as an amount. ``[0-9]``, not ``\d``: ``\d`` matches
# every Unicode digit.
NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def to_decimal(value: Any) -> Decimal:
    """Parse an amount from a JSON string (``NUMBER``), JSON number (``Decimal``/``int``, as
    ``ledger.jsonx`` parses them) or ``Decimal``; raises ``InvalidAmount``."""
    if isinstance(value, bool) or value is None:
        raise InvalidAmount(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        if NUMBER.fullmatch(value) is None:
            raise InvalidAmount(f"not a decimal amount: {_shown(value)}")
        try:
            result = Decimal(value)
        except InvalidOperation:  # the grammar admits it, but the exponent is beyond Decimal's
            raise InvalidAmount(f"amount out of range: {_shown(value)}") from None
    else:
        # float included on purpose: by the time a float exists, the digits are already lost.
        kind = type(value).__name__
        raise InvalidAmount(f"amount must be a decimal string or JSON number, got {kind}")
    if not result.is_finite():
        raise InvalidAmount(f"amount is not finite: {value!r}")
    return result


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short: a hostile value must not flood the logs."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def fmt(amount: Decimal) -> str:
    """Canonical decimal string: plain notation, no exponent, no trailing zeros ("0" for zero)."""
    if amount == 0:
        return "0"
    if not amount.is_finite():
        return format(amount, "f")  # no amount is one (the grammar refuses them); say what it is
    # format(..., "f") writes every digit whatever the context (it never rounds); only the
    # fraction's trailing zeros remain to drop. Journal, hash chain and exports call this for
    # every amount, so it avoids normalize(), which needs a Context built per call (the
    # differential test in tests/property/test_money_format.py keeps the two identical).
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# Python's default context keeps 28 significant digits: an 18-decimal token amount with ten
# integer digits, or a fee sent with extra digits, would be rounded silently. Addition,
# subtraction, negation and abs are exact under this context (digits grow only as needed).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def exact_arithmetic() -> AbstractContextManager[Context]:
    """Run money arithmetic without any rounding (see ``_EXACT``).

    decimal's own context manager, returned as is: a generator wrapper around it costs more
    than the arithmetic of a typical journal entry."""
    return localcontext(_EXACT)
