"""Aurpay's journal postings: concrete entries for orders and refunds, reversals and keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ledger.journal.derive import UnpostableSnapshot, check_balanced, plan_entries
from ledger.model import JournalEntry, Posting
from ledger.precision import PrecisionTable
from tests.helpers.books import DERIVERS
from tests.strategies import (
    OBSERVED_AT,
    UNPAID,
    make_snapshot,
    order_payload,
    refund_payload,
    transaction_payload,
)
from worker.gateways.aurpay.postings import DERIVERS as AURPAY_DERIVERS
from worker.gateways.books import deriver_table

PRECISION = PrecisionTable()
D = Decimal
ORDER_ID = "20250207040935220628"
SUSPENSE = f"assets:suspense:aurpay:order:{ORDER_ID}"  # the order's own sub-account


def postings(*legs: tuple[str, str, str]) -> tuple[Posting, ...]:
    return tuple(Posting(account, currency, D(amount)) for account, currency, amount in legs)


def bare(entry: JournalEntry) -> tuple[Posting, ...]:
    """The entry's postings without their values (the value tests check those)."""
    return tuple(Posting(p.account, p.currency, p.amount) for p in entry.postings)


def plan_order(**fields: Any) -> list[JournalEntry]:
    return plan_entries(make_snapshot("order", order_payload(**fields)), None, PRECISION, DERIVERS)


def test_paid_order_posts_gross_fee_and_net() -> None:
    (entry,) = plan_order(status="SUCCESS")  # the doc's callback example, paid
    assert entry.key == f"aurpay:order:{ORDER_ID}:v1"
    assert bare(entry) == postings(
        ("income:sales", "BTC", "-0.00102549"),
        ("expenses:gateway-fees", "BTC", "0.00000820392"),  # extra digits kept as sent
        ("assets:aurpay:BTC", "BTC", "0.00101728"),  # what a wallet holds: 8 places
        ("expenses:rounding", "BTC", "0.00000000608"),  # the sub-unit residue
    )
    assert [p.value for p in entry.postings] == [D("-100.00"), D("0.80"), D("99.20"), D("0.00")]
    assert {p.value_currency for p in entry.postings} == {"USD"}
    assert entry.meta["value_source"] == "aurpay order.vs_price"
    assert entry.date == datetime(2025, 2, 6, tzinfo=UTC)  # naive update_time read as UTC
    assert entry.source == "aurpay" and entry.external_id == ORDER_ID
    assert entry.reverses_key is None and entry.snapshot_seq == 1
    assert "sale 0.00102549 BTC" in entry.description


def test_doc_callback_example_is_pending_and_posts_nothing(
    aurpay_fixture: Callable[[str], Any],
) -> None:
    snapshot = make_snapshot("order", aurpay_fixture("callback-order.json"))
    assert plan_entries(snapshot, None, PRECISION, DERIVERS) == []


@pytest.mark.parametrize("status", [*UNPAID, "UNKNOWN-NEW", None])
def test_unpaid_or_unknown_statuses_post_nothing_when_nothing_arrived(status: str | None) -> None:
    assert plan_order(status=status, obtained=None) == []
    assert plan_order(status=status, obtained="0") == []


@pytest.mark.parametrize("status", [*UNPAID, "UNKNOWN-NEW", None])
def test_money_received_on_an_unsettled_order_is_a_deposit(status: str | None) -> None:
    (entry,) = plan_order(status=status, obtained="0.00050000")
    assert bare(entry) == postings(
        ("assets:aurpay:BTC", "BTC", "0.00050000"),
        ("liabilities:aurpay:deposits", "BTC", "-0.00050000"),
    )
    check_balanced(entry)


@pytest.mark.parametrize("status", ["SUCCESS", "RESOLVED", "REFUNDED", "refunded"])
def test_paid_statuses_post_the_sale(status: str) -> None:
    (entry,) = plan_order(status=status)
    assert bare(entry)[0] == Posting("income:sales", "BTC", D("-0.00102549"))


def test_paid_order_without_amount_or_with_zero_amount_posts_nothing() -> None:
    assert plan_order(amount=None) == []
    assert plan_order(amount="0", fee=None, obtained="0.000") == []


def test_refund_info_without_amount_posts_nothing() -> None:
    snapshot = make_snapshot("refund", refund_payload(amount=None))
    assert plan_entries(snapshot, None, PRECISION, DERIVERS) == []


def test_obtained_is_the_net_and_dust_goes_to_rounding() -> None:
    (entry,) = plan_order(amount="1.00000000", fee="0.01", obtained="0.989999995")
    assert bare(entry) == postings(
        ("income:sales", "BTC", "-1.00000000"),
        ("expenses:gateway-fees", "BTC", "0.01"),
        ("assets:aurpay:BTC", "BTC", "0.98999999"),  # the chain holds 8 places
        ("expenses:rounding", "BTC", "0.000000010"),  # sub-unit residue + the 5e-9 short
    )


@pytest.mark.parametrize(
    ("currency", "obtained", "account", "difference"),
    [
        ("BTC", "0.98999999", "expenses:rounding", "0.00000001"),  # exactly one unit
        ("BTC", "0.98999998", SUSPENSE, "0.00000002"),  # two units
        ("BTC", "0.99000002", "liabilities:aurpay:deposits", "-0.00000002"),  # overpaid
        ("USDT-TRC20", "0.989998", SUSPENSE, "0.000002"),
        ("ETH", "0.989999999999999999", "expenses:rounding", "1E-18"),
        ("ETH", "0.989999999999999998", SUSPENSE, "2E-18"),
    ],
)
def test_suspense_versus_rounding(
    currency: str, obtained: str, account: str, difference: str
) -> None:
    (entry,) = plan_order(currency=currency, amount="1", fee="0.01", obtained=obtained)
    assert bare(entry)[-1] == Posting(account, currency, D(difference))
    check_balanced(entry)


def test_a_resolved_shortfall_is_an_accepted_underpayment() -> None:
    (entry,) = plan_order(status="RESOLVED", amount="1", fee="0.01", obtained="0.5")
    assert bare(entry)[-1] == Posting("expenses:accepted-underpayments", "BTC", D("0.49"))


def test_null_fee_posts_no_fee_line() -> None:
    (entry,) = plan_order(fee=None)
    assert [p.account for p in entry.postings] == ["income:sales", "assets:aurpay:BTC"]
    assert entry.postings[1].amount == D("0.00102549")


def test_json_numbers_and_strings_post_the_same() -> None:
    as_text = plan_order(amount="19.0012", fee="0.19", currency="USDC-TRC20")
    as_number = plan_order(amount=D("19.0012"), fee=D("0.19"), currency="USDC-TRC20")
    assert as_text == as_number


def test_doc_refund_info_posts_amount_fee_and_obtained(
    aurpay_fixture: Callable[[str], Any],
) -> None:
    refund = make_snapshot("refund", aurpay_fixture("refund-info-response.json")["data"])
    (entry,) = plan_entries(refund, None, PRECISION, DERIVERS)
    assert entry.key == "aurpay:refund:20240614061316661529:v1"
    assert bare(entry) == postings(
        ("assets:aurpay:USDT-TRC20", "USDT-TRC20", "-7.6883"),
        ("expenses:network-fees", "USDT-TRC20", "0.353"),
        ("income:refunds", "USDT-TRC20", "7.3353"),
    )
    assert entry.date == OBSERVED_AT  # refund_et (60) has no documented unit; no order held
    assert entry.meta == {"flags": ["no-price"], "date_source": "observed"}
    assert all(p.value is None for p in entry.postings)


def test_refund_difference_goes_to_suspense() -> None:
    snapshot = make_snapshot("refund", refund_payload(obtained=D("7.3253")))
    (entry,) = plan_entries(snapshot, None, PRECISION, DERIVERS)
    assert bare(entry)[-1] == Posting(
        f"assets:suspense:aurpay:refund:{snapshot.external_id}", "USDT-TRC20", D("0.0100")
    )


def test_transactions_post_nothing() -> None:
    snapshot = make_snapshot("transaction", transaction_payload())
    assert plan_entries(snapshot, None, PRECISION, DERIVERS) == []


def test_entry_date_falls_back_to_create_time_then_observed_at() -> None:
    (by_create,) = plan_order(update_time=None, create_time="2025-02-05T10:00:00")
    assert by_create.date == datetime(2025, 2, 5, 10, tzinfo=UTC)
    (by_zone,) = plan_order(update_time="2025-02-06T01:00:00+01:00")
    assert by_zone.date == datetime(2025, 2, 6, tzinfo=UTC)
    (observed,) = plan_order(update_time="not a time", create_time=None)
    assert observed.date == OBSERVED_AT


def test_same_postings_plan_nothing_and_a_change_reverses_then_reposts() -> None:
    v1 = make_snapshot("order", order_payload(status="SUCCESS"), version=1)
    (first,) = plan_entries(v1, None, PRECISION, DERIVERS)
    refunded = order_payload(status="REFUNDED", update_time="2025-02-08T00:00:00")
    unchanged = make_snapshot("order", refunded, version=2)
    assert plan_entries(unchanged, first, PRECISION, DERIVERS) == []

    corrected = make_snapshot("order", order_payload(amount="0.00102550"), version=3, seq=7)
    reversal, new = plan_entries(corrected, first, PRECISION, DERIVERS)
    assert reversal.key == f"aurpay:order:{ORDER_ID}:v1:reversal@v3"
    assert reversal.reverses_key == first.key
    assert reversal.postings == tuple(
        Posting(p.account, p.currency, -p.amount, -p.value, p.value_currency)
        for p in first.postings
        if p.value is not None
    )
    assert reversal.snapshot_seq == new.snapshot_seq == 7
    assert new.key == f"aurpay:order:{ORDER_ID}:v3" and new.reverses_key is None
    assert bare(new)[0] == Posting("income:sales", "BTC", D("-0.00102550"))


def test_an_order_that_stops_posting_is_only_reversed() -> None:
    (paid,) = plan_order(status="SUCCESS")
    later = make_snapshot("order", order_payload(status="TERMINATED"), version=2)
    (reversal,) = plan_entries(later, paid, PRECISION, DERIVERS)
    assert reversal.reverses_key == paid.key
    assert reversal.date == OBSERVED_AT  # when the change was seen


def test_a_reversal_is_never_dated_before_what_it_reverses() -> None:
    (paid,) = plan_order(update_time="2025-03-01T00:00:00")
    earlier = make_snapshot(
        "order", order_payload(update_time="2025-01-01T00:00:00", fee=None), version=2
    )
    reversal, new = plan_entries(earlier, paid, PRECISION, DERIVERS)
    assert reversal.date == paid.date
    assert new.date == datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "abc"},
        {"amount": 0.5},  # a float has lost its digits already
        {"fee": ""},
        {"amount": "1E+999999999"},  # exact arithmetic on it would exhaust memory
        {"currency": None},
        {"obtained": "NaN"},
    ],
)
def test_underivable_payload_raises_unpostable(fields: dict[str, Any]) -> None:
    payload = {**order_payload(), **fields}  # unvalidated on purpose: defence in depth
    with pytest.raises(UnpostableSnapshot):
        plan_entries(make_snapshot("order", payload), None, PRECISION, DERIVERS)


def test_an_unknown_kind_is_unpostable() -> None:
    snapshot = make_snapshot("payout", order_payload(), external_id="x")
    with pytest.raises(UnpostableSnapshot, match="aurpay/payout"):
        plan_entries(snapshot, None, PRECISION, DERIVERS)


def test_another_aurpay_account_posts_to_its_own_balance() -> None:
    derivers = deriver_table({"aurpay-eu": AURPAY_DERIVERS})
    snapshot = make_snapshot("order", order_payload(status="SUCCESS"), source="aurpay-eu")
    (entry,) = plan_entries(snapshot, None, PRECISION, derivers)
    assert entry.key == f"aurpay-eu:order:{ORDER_ID}:v1" and entry.source == "aurpay-eu"
    assert "assets:aurpay-eu:BTC" in {p.account for p in entry.postings}
    assert "assets:aurpay:BTC" not in {p.account for p in entry.postings}


def test_exact_beyond_28_significant_digits() -> None:
    (entry,) = plan_order(
        currency="ETH", amount="1234567890.123456789012345678", fee="0.000000000000000000001"
    )
    check_balanced(entry)
    asset, dust = entry.postings[-2:]
    assert asset.amount == D("1234567890.123456789012345677")  # ETH: 18 places on chain
    assert dust.amount == D("0.000000000000000000999")  # every digit kept, in rounding
