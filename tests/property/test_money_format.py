"""``ledger.money.fmt`` against the normalize-based form it replaced: the same text for any
finite Decimal. Amounts are written by ``fmt`` into journal postings, the hash chain and every
export, so a difference would change stored text: this comparison is permanent."""

from __future__ import annotations

from decimal import Context, Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from ledger.money import fmt


def reference(amount: Decimal) -> str:
    """Plain notation of the normalized value (every digit kept), "0" for any zero."""
    if amount == 0:
        return "0"
    return format(amount.normalize(Context(prec=len(amount.as_tuple().digits) + 1)), "f")


amounts = st.builds(
    lambda sign, digits, exponent: Decimal((sign, digits, exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple),
    st.integers(-40, 40),
)


@given(amounts)
@example(Decimal("100"))
@example(Decimal("1E+2"))
@example(Decimal("-0.00"))
@example(Decimal("0E-18"))
@example(Decimal("-1.50"))
@example(Decimal("12345678901.123456789012345678"))
@example(Decimal("1.0E-20"))
def test_fmt_writes_what_the_normalized_form_writes(amount: Decimal) -> None:
    assert fmt(amount) == reference(amount)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_fmt_of_any_finite_decimal(amount: Decimal) -> None:
    assert fmt(amount) == reference(amount)
