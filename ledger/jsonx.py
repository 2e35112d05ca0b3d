"""Decimal-exact JSON: parse numbers as ``Decimal``/``int`` and write them back with their digits.

The providers send money both as JSON strings ("0.00102549") and as JSON numbers (7.6883);
a binary float would silently change either, so no float ever appears on this path.

Reading is simplejson's (orjson cannot build a Decimal). Writing takes orjson for plain values,
the ones ``loads`` builds, and simplejson's C encoder for anything else; both write the same
bytes, which tests/property/test_json_encoding.py compares for any value.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import orjson
import simplejson
import simplejson.encoder


class InvalidJSON(ValueError):
    """The text is not valid JSON (e.g. a truncated body)."""


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"non-standard JSON constant {name}")


# What ``simplejson.loads(text, use_decimal=True, parse_constant=_reject_constant)`` builds on
# every call, built once: a decoder holds no state between calls (simplejson's own default
# decoder is shared the same way), and building it was a third of the cost of a small parse.
_DECODER = simplejson.JSONDecoder(
    encoding=None, parse_float=Decimal, parse_constant=_reject_constant
)


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as an exact ``Decimal``."""
    try:
        # bytes as the decoder would take them (UTF-8), said here for the type checker
        return _DECODER.decode(str(text, "utf-8") if isinstance(text, bytes) else text)
    except simplejson.JSONDecodeError as exc:
        raise InvalidJSON(f"invalid JSON: {exc.msg} at position {exc.pos}") from None


def _encoder(*, sort_keys: bool) -> Callable[[Any], str]:
    r"""``simplejson.JSONEncoder(use_decimal=True, separators=(",", ":"), ensure_ascii=False,
    sort_keys=...).encode``, with the same C encoder but the standard library's C string
    escaper.

    Why: with ``ensure_ascii=False`` simplejson's C encoder calls back into its pure-Python
    ``encode_basestring`` (a regex) for every key and string; that was most of the cost of
    encoding a payload, which the append path does for every record. The two escapers write
    the same text (``"`` ``\\`` and the control characters, ``\b \f \n \r \t`` short,
    the rest ``\u00xx``; everything else as is); a property test in tests/property compares
    them, and the encoder's other options are taken from a ``JSONEncoder`` configured as
    before. Without simplejson's C extension the plain encoder is used.
    """
    reference = simplejson.JSONEncoder(
        use_decimal=True, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False
    )
    make: Any = getattr(simplejson.encoder, "c_make_encoder", None)  # untyped in the stubs
    escape: Callable[[str], str] | None = json.encoder.c_encode_basestring  # type: ignore[attr-defined]
    if make is None or escape is None:  # pragma: no cover - both ship compiled on our platforms
        return reference.encode
    r = reference
    bitcount = 53 if r.bigint_as_string else r.int_as_string_bitcount
    options: tuple[Any, ...] = (r.default, escape, r.indent, r.key_separator, r.item_separator)
    options += (r.sort_keys, r.skipkeys, r.allow_nan)
    after_memo: tuple[Any, ...] = (r.use_decimal, r.namedtuple_as_object, r.tuple_as_array)
    after_memo += (bitcount, r.item_sort_key, r.encoding, r.for_json, r.ignore_nan, Decimal)
    after_memo += (r.iterable_as_array,)

    def encode(obj: Any) -> str:
        if isinstance(obj, str):
            return str(escape(obj))
        # Fresh circular-reference markers and key memo per call, as JSONEncoder.iterencode.
        chunks = make({}, *options, {}, *after_memo)(obj, 0)
        return "".join(chunks)

    return encode


_compact = _encoder(sort_keys=False)
_sorted = _encoder(sort_keys=True)


def _plain(value: Any) -> bool:
    """True if ``value`` is built only of what ``loads`` builds: a dict with str keys, a list or
    tuple, str, int, bool, None or Decimal, each of exactly that type.

    On such a value orjson writes the bytes our simplejson encoder writes (a differential
    property test in tests/property holds this for good); anything else (a float, an enum, a
    str subclass, a Mapping that is not a dict) takes the simplejson path, so no input's
    encoding changes.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None or kind is Decimal:
        return True
    if kind is dict:
        for key, item in value.items():  # noqa: SIM110 - as below
            if type(key) is not str or not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110 - a plain loop is measurably faster than all() here
            if not _plain(item):
                return False
        return True
    return False


def _decimal_digits(obj: Any) -> orjson.Fragment:
    # Only Decimals reach here (_plain vouched for the rest); str() is what simplejson writes.
    return orjson.Fragment(str(obj))


def _fast(obj: Any, option: int) -> bytes | None:
    """orjson's bytes for a plain value, or None where it declines (an int past 64 bits, a lone
    surrogate, nesting past its limit): the caller then writes it the simplejson way."""
    if not _plain(obj):
        return None
    try:
        return orjson.dumps(obj, default=_decimal_digits, option=option)
    except orjson.JSONEncodeError:
        return None


def dumps(obj: Any) -> str:
    """Compact JSON, keys in their original order, Decimals written with their own digits."""
    fast = _fast(obj, 0)
    return _compact(obj) if fast is None else fast.decode("utf-8")


def canonical(obj: Any) -> bytes:
    """The documented canonical encoding used for hashing.

    Compact UTF-8 JSON with keys sorted, no insignificant whitespace, non-ASCII kept as UTF-8,
    and numbers written exactly as parsed (a ``Decimal`` keeps its digits: ``7.6883`` stays
    ``7.6883``, ``100.0`` stays ``100.0``). Strings stay strings.
    """
    fast = _fast(obj, orjson.OPT_SORT_KEYS)
    return _sorted(obj).encode("utf-8") if fast is None else fast


def quote(text: str) -> str:
    """One JSON string, as ``dumps`` writes it."""
    return _compact(text)


def as_mapping(obj: Any) -> Mapping[str, Any]:
    """Return ``obj`` if it is a JSON object, else raise ``InvalidJSON``."""
    if not isinstance(obj, Mapping):
        raise InvalidJSON(f"expected a JSON object, got {type(obj).__name__}")
    return obj
