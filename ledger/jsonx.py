"""Decimal-exact JSON: parse numbers as ``Decimal``/``int`` and write them back with their digits.

The providers send money both as JSON strings ("0.00102549") and as JSON numbers (7.6883);
a binary float would silently change either, so no float ever appears on this path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import simplejson


class InvalidJSON(ValueError):
    """The text is not valid JSON (e.g. a truncated body)."""


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"non-standard JSON constant {name}")


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as an exact ``Decimal``."""
    try:
        return simplejson.loads(text, use_decimal=True, parse_constant=_reject_constant)
    except simplejson.JSONDecodeError as exc:
        raise InvalidJSON(f"invalid JSON: {exc.msg} at position {exc.pos}") from None


def dumps(obj: Any) -> str:
    """Compact JSON, keys in their original order, Decimals written with their own digits."""
    return str(simplejson.dumps(obj, use_decimal=True, separators=(",", ":"), ensure_ascii=False))


def canonical(obj: Any) -> bytes:
    """The documented canonical encoding used for hashing.

    Compact UTF-8 JSON with keys sorted, no insignificant whitespace, non-ASCII kept as UTF-8,
    and numbers written exactly as parsed (a ``Decimal`` keeps its digits: ``7.6883`` stays
    ``7.6883``, ``100.0`` stays ``100.0``). Strings stay strings.
    """
    text = simplejson.dumps(
        obj, use_decimal=True, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )
    return str(text).encode("utf-8")


def as_mapping(obj: Any) -> Mapping[str, Any]:
    """Return ``obj`` if it is a JSON object, else raise ``InvalidJSON``."""
    if not isinstance(obj, Mapping):
        raise InvalidJSON(f"expected a JSON object, got {type(obj).__name__}")
    return obj
