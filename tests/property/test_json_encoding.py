"""The ledger's JSON encoder and decoder against simplejson's own: the same text, and the
same values, for any JSON value.

``ledger.jsonx`` pairs simplejson's C encoder with the standard library's C string escaper
(for speed); the bytes it writes are hashed into the chain, so this comparison is permanent:
a difference, for any value, would be a chain no other tool could recompute.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

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
scalars = st.none() | st.booleans() | st.integers() | decimals | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
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
