"""The number grammar of ``ledger.money.to_decimal``: what it accepts round-trips exactly, and
nothing outside it (Unicode digits, underscores, whitespace, NaN, Infinity) becomes an amount."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger import jsonx
from ledger.money import NUMBER, InvalidAmount, fmt, to_decimal


def written(text: str) -> tuple[int, tuple[int, ...], int]:
    """(sign, digits, exponent) as ``text`` writes them, read without ``Decimal``."""
    sign = 1 if text.startswith("-") else 0
    mantissa, _, exponent = text.lstrip("+-").lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = tuple(int(d) for d in (whole + fraction).lstrip("0")) or (0,)
    return sign, digits, int(exponent or 0) - len(fraction)


@given(st.from_regex(NUMBER, fullmatch=True))
def test_every_string_the_grammar_accepts_round_trips_exactly(text: str) -> None:
    _, _, exponent = text.lower().partition("e")
    assume(len(exponent.lstrip("+-")) <= 6)  # beyond Decimal's exponent range: refused, below

    amount = to_decimal(text)

    assert amount.as_tuple() == written(text)  # every digit and the exponent, as sent
    assert to_decimal(str(amount)).as_tuple() == amount.as_tuple()
    assert to_decimal(fmt(amount)) == amount


@pytest.mark.parametrize(
    "text",
    [
        "１２３",  # fullwidth digits
        "١٢٣",  # Arabic-Indic digits
        "１.５",
        "1_000",
        " 1.5 ",
        "1.5 ",
        "\t1",
        "1\n",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "",
        "+",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1,5",
        "0x10",
        "--1",
        "1.5.1",
    ],
)
def test_text_outside_the_grammar_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount, match="not a decimal amount"):
        to_decimal(text)


@given(st.text(max_size=20))
def test_nothing_outside_the_grammar_becomes_an_amount(text: str) -> None:
    assume(NUMBER.fullmatch(text) is None)
    with pytest.raises(InvalidAmount):
        to_decimal(text)


def test_the_gateways_exponent_form_is_read_exactly() -> None:
    assert to_decimal("1.496e-05") == Decimal("0.00001496")
    assert to_decimal("1.496e-05").as_tuple() == (0, (1, 4, 9, 6), -8)
    assert to_decimal("-2E+3") == Decimal(-2000)


def test_an_exponent_beyond_decimals_range_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="out of range"):
        to_decimal("1e999999999999999999999")


def test_json_numbers_parsed_by_jsonx_are_kept_as_they_are() -> None:
    parsed = jsonx.loads('{"a": 7.6883, "b": 1.496e-05, "c": 42, "d": 100.0}')
    assert to_decimal(parsed["a"]).as_tuple() == Decimal("7.6883").as_tuple()
    assert to_decimal(parsed["b"]).as_tuple() == Decimal("1.496e-05").as_tuple()
    assert to_decimal(parsed["c"]) == 42
    assert str(to_decimal(parsed["d"])) == "100.0"  # the digits as sent


@pytest.mark.parametrize(
    "value", [1.5, True, None, Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), [1]]
)
def test_floats_flags_and_non_finite_decimals_are_refused(value: object) -> None:
    with pytest.raises(InvalidAmount):
        to_decimal(value)


def test_a_long_refused_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(InvalidAmount) as caught:
        to_decimal("9" * 5000 + "x")
    assert len(str(caught.value)) < 120 and "5001 characters" in str(caught.value)
