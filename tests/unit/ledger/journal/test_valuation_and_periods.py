"""Values from a quote (pro rata, to the cent, summing to zero; no quote → flagged, never zero)
and the closed-period rule (an entry dated on or before the closed day moves to the next one)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ledger.journal.periods import CloseRefused, check_close, defer_into_open_period
from ledger.journal.valuation import NO_PRICE, Quote, valued
from ledger.model import JournalEntry, Posting

D = Decimal
QUOTE = Quote(D("100.00"), "USD", D("3"), "BTC", "test quote")


def test_values_are_pro_rata_to_the_cent_and_sum_to_zero() -> None:
    legs = (
        Posting("income:sales", "BTC", D("-3")),
        Posting("expenses:gateway-fees", "BTC", D("1")),
        Posting("assets:x:BTC", "BTC", D("1")),
        Posting("expenses:rounding", "BTC", D("1")),
    )
    out, meta = valued(legs, QUOTE)
    assert [p.value for p in out] == [D("-100.00"), D("33.34"), D("33.33"), D("33.33")]
    assert sum(p.value for p in out if p.value is not None) == 0
    assert {p.value_currency for p in out} == {"USD"} and meta == {"value_source": "test quote"}


def test_a_leg_in_the_quote_currency_is_worth_its_amount_and_others_void_the_quote() -> None:
    out, _ = valued((Posting("a", "USD", D("-5")), Posting("b", "BTC", D("0.15"))), QUOTE)
    assert [p.value for p in out] == [D("-5"), D("5.00")]
    out, meta = valued((Posting("a", "ETH", D("1")), Posting("b", "ETH", D("-1"))), QUOTE)
    assert all(p.value is None for p in out) and meta == {"flags": [NO_PRICE]}


def test_no_quote_is_no_value_never_zero() -> None:
    out, meta = valued((Posting("a", "BTC", D("1")), Posting("b", "BTC", D("-1"))), None)
    assert [p.value for p in out] == [None, None] and meta == {"flags": [NO_PRICE]}


def _entry(when: datetime) -> JournalEntry:
    return JournalEntry("k", when, "d", "aurpay", "1", 1, (Posting("a", "BTC", D(1)),))


def test_an_entry_in_a_closed_period_moves_to_the_first_open_day() -> None:
    closed = date(2025, 1, 31)
    inside = defer_into_open_period(_entry(datetime(2025, 1, 31, 23, 59, tzinfo=UTC)), closed)
    assert inside.date == datetime(2025, 2, 1, tzinfo=UTC)
    assert inside.meta == {"original_date": "2025-01-31T23:59:00.000000Z"}
    after = _entry(datetime(2025, 2, 1, tzinfo=UTC))
    assert defer_into_open_period(after, closed) is after
    assert defer_into_open_period(inside, None) is inside


def test_closes_only_move_forward_and_never_reach_today() -> None:
    check_close(date(2025, 2, 28), [date(2025, 1, 31)], today=date(2026, 1, 1))
    with pytest.raises(CloseRefused, match="already closed"):
        check_close(date(2025, 1, 31), [date(2025, 1, 31)], today=date(2026, 1, 1))
    with pytest.raises(CloseRefused, match="backwards"):
        check_close(date(2025, 1, 1), [date(2025, 1, 31)], today=date(2026, 1, 1))
    with pytest.raises(CloseRefused, match="before today"):
        check_close(date(2026, 1, 1), [], today=date(2026, 1, 1))
