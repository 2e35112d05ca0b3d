"""The ledger's JSON encoder and decoder against simplejson's own: the same text, and the
same values, for any JSON value.

``ledger.jsonx`` writes plain values (what ``loads`` builds) with orjson, and everything else
with simplejson's C encoder paired with the standard library's C string escaper, both for
speed; the bytes it writes are hashed into the chain, so this comparison is permanent: a
difference, for any value, would be a chain no other tool could recompute.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest
import simplejson
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import chain, jsonx


def reference(obj: Any, *, sort_keys: bool) -> str:
    """What every release before this encoder wrote: plain ``simplejson.dumps``."""
    return str(
        simplejson.dumps(
            obj, use_decimal=True, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False
        )
    )


# Every character class the escapers treat differently: controls, quote, backslash, the
# JavaScript line separators, non-ASCII, astral planes and lone surrogates.
texts = st.text(
    st.one_of(
        st.characters(max_codepoint=0x7F),
        st.sampled_from('"\\\x00\x08\x0c\n\r\t\x1f\x7f\u2028\u2029\ufeff'),
        st.characters(min_codepoint=0x80),
    ),
    max_size=40,
)
decimals = st.decimals(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [Decimal("0.00"), Decimal("-0"), Decimal("1E+3"), Decimal("1754.50"), Decimal("7.6883")]
)
# Integers on both sides of orjson's 64-bit range, where it declines and simplejson writes.
integers = st.integers() | st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1])
scalars = st.none() | st.booleans() | integers | decimals | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)


class Label(str):
    """A str subclass: not plain, so written the simplejson way."""


# Values outside what ``loads`` builds, which the encoders still take: tuples, floats, int and
# bool keys, str subclasses. They must come out as before, whichever path writes them.
odd_scalars = scalars | st.floats(allow_nan=False, allow_infinity=False) | texts.map(Label)
odd_values = st.recursive(
    odd_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(texts | st.integers() | st.booleans(), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500)
@given(values)
def test_dumps_writes_what_simplejson_writes(value: Any) -> None:
    assert jsonx.dumps(value) == reference(value, sort_keys=False)


@settings(max_examples=500)
@given(values)
def test_canonical_writes_what_simplejson_writes_with_sorted_keys(value: Any) -> None:
    text = reference(value, sort_keys=True)
    try:
        expected = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: neither encoding can hash it
        expected = None
    if expected is None:
        try:
            jsonx.canonical(value)
        except UnicodeEncodeError:
            return
        raise AssertionError("canonical() encoded a lone surrogate simplejson cannot")
    assert jsonx.canonical(value) == expected
    assert chain.content_hash(value) == hashlib.sha256(expected).hexdigest()


@settings(max_examples=300)
@given(odd_values)
def test_values_beyond_what_loads_builds_are_written_as_before(value: Any) -> None:
    assert jsonx.dumps(value) == reference(value, sort_keys=False)
    try:
        expected = reference(value, sort_keys=True)
    except TypeError:  # simplejson cannot sort keys of mixed types; neither may we
        with pytest.raises(TypeError):
            jsonx.canonical(value)
        return
    try:
        encoded = expected.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            jsonx.canonical(value)
        return
    assert jsonx.canonical(value) == encoded


def test_nesting_past_orjsons_limit_is_written_as_before() -> None:
    deep: Any = [Decimal("1.50")]
    for _ in range(300):
        deep = {"k": deep}
    assert jsonx.dumps(deep) == reference(deep, sort_keys=False)
    assert jsonx.canonical(deep) == reference(deep, sort_keys=True).encode("utf-8")


def test_a_gateway_record_takes_the_fast_path() -> None:
    """The comparisons above would pass if every value fell back; a record from ``loads`` must
    not, or the speed this encoder exists for is gone."""
    order = jsonx.loads(
        '{"order_id":"a1","amount":"0.00102549","fee":7.6883,"paid":true,"memo":null,'
        r'"lines":[{"qty":2,"price":1754.50,"name":"caf\u00e9 \ud83d\ude00"}]}'
    )
    assert jsonx._fast(order, 0) is not None
    assert jsonx.dumps(order) == reference(order, sort_keys=False)
    assert jsonx.canonical(order) == reference(order, sort_keys=True).encode("utf-8")


@given(texts)
def test_one_string_is_quoted_as_inside_a_document(text: str) -> None:
    assert jsonx.quote(text) == reference(text, sort_keys=False)
    assert jsonx.dumps([text]) == f"[{jsonx.quote(text)}]"


@settings(max_examples=300)
@given(values)
def test_loads_reads_what_simplejson_reads(value: Any) -> None:
    text = reference(value, sort_keys=False)
    expected = simplejson.loads(text, use_decimal=True)
    got = jsonx.loads(text)
    assert got == expected
    assert jsonx.dumps(got) == jsonx.dumps(expected)  # 1.50 stays 1.50, not 1.5
