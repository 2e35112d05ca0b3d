"""Ebioro journal postings: fiat and USDC as separate commodities, exact cents, versions."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.exports.beancount import write_beancount
from ledger.journal.derive import UnpostableSnapshot, balances, check_balanced, plan_entries
from ledger.model import JournalEntry, Posting, Snapshot
from ledger.precision import PrecisionTable
from tests.ebioro_data import payment_payload, snapshot
from tests.helpers.books import DERIVERS
from tests.strategies import wire
from worker.gateways.ebioro.postings import SALE_STATUSES
from worker.gateways.ebioro.rules import payment_rule

PRECISION = PrecisionTable()
D = Decimal
Load = Callable[[str], Any]


def postings(*legs: tuple[str, str, str]) -> tuple[Posting, ...]:
    return tuple(Posting(account, currency, D(amount)) for account, currency, amount in legs)


def bare(entry: JournalEntry) -> tuple[Posting, ...]:
    """The entry's postings without their values (the value tests check those)."""
    return tuple(Posting(p.account, p.currency, p.amount) for p in entry.postings)


def snap(kind: str, payload: dict[str, Any], version: int = 1) -> Snapshot:
    assert kind == ("refund" if "refund_id" in payload else "payment")
    return snapshot(wire(payload), version=version)


def plan(kind: str, payload: dict[str, Any], effective: JournalEntry | None = None) -> list[Any]:
    return plan_entries(snap(kind, payload), effective, PRECISION, DERIVERS)


def test_a_paid_payment_posts_fiat_and_usdc_apart() -> None:
    (entry,) = plan("payment", payment_payload())

    assert entry.key == "ebioro:payment:pt_ABC123:v1"
    assert bare(entry) == postings(
        ("income:sales", "USD", "-10.00"),
        ("equity:conversions", "USD", "10.00"),
        ("equity:conversions", "USDC", "-10.00"),
        ("expenses:gateway-fees", "USDC", "0.25"),
        ("assets:ebioro:USDC", "USDC", "9.75"),
    )
    assert balances(entry.postings) == {"USD": 0, "USDC": 0}
    assert entry.date == datetime(2025, 2, 6, 11, tzinfo=UTC)  # updatedAt
    assert entry.source == "ebioro" and entry.external_id == "pt_ABC123"
    assert "10 USD due as 10 USDC, paid 10 USDC" in entry.description


def test_a_fractional_fee_is_kept_exactly() -> None:
    # The doc's list example: settlement_amount 2663, settlement_fee 66.575 (USDC cents).
    payload = payment_payload(
        amount={"value": 3000, "currency": "USD"},
        settlement_amount=2663,
        settlement_fee=D("66.575"),
        amount_paid=2663,
        amount_received=2663,
    )
    (entry,) = plan("payment", payload)
    assert bare(entry) == postings(
        ("income:sales", "USD", "-30.00"),
        ("equity:conversions", "USD", "30.00"),
        ("equity:conversions", "USDC", "-26.63"),
        ("expenses:gateway-fees", "USDC", "0.66575"),
        ("assets:ebioro:USDC", "USDC", "25.96425"),
    )


@pytest.mark.parametrize(
    ("paid", "account", "difference"),
    [
        (
            990,
            "assets:suspense:ebioro:payment:pt_ABC123",
            "0.10",
        ),  # 10 cents of what was due never arrived
        (D("999.99999"), "expenses:rounding", "0.0000001"),  # one unit of USDC (7 places): dust
        (D("1000.0001"), "liabilities:ebioro:deposits", "-0.000001"),  # overpaid: owed back
    ],
)
def test_what_was_due_against_what_was_paid(paid: Decimal, account: str, difference: str) -> None:
    (entry,) = plan("payment", payment_payload(amount_paid=paid, amount_received=paid))
    *_, net, residual = bare(entry)
    assert bare(entry)[2] == Posting("equity:conversions", "USDC", D("-10.00"))
    assert net == Posting("assets:ebioro:USDC", "USDC", (D(paid) - 25).scaleb(-2))
    assert residual == Posting(account, "USDC", D(difference))
    check_balanced(entry)


def test_an_accepted_underpayment_posts_its_shortfall() -> None:
    payload = payment_payload(
        status="underpaid_accepted", amount_paid=800, amount_received=800, amount_remaining=200
    )
    (entry,) = plan("payment", payload)
    assert bare(entry) == postings(
        ("income:sales", "USD", "-10.00"),
        ("equity:conversions", "USD", "10.00"),
        ("equity:conversions", "USDC", "-10.00"),
        ("expenses:gateway-fees", "USDC", "0.25"),
        ("expenses:accepted-underpayments", "USDC", "2.00"),
        ("assets:ebioro:USDC", "USDC", "7.75"),
    )


def test_without_amount_paid_the_settlement_amount_is_the_gross() -> None:
    (entry,) = plan("payment", payment_payload(amount_paid=None, settlement_amount=1000))
    assert bare(entry)[2:] == postings(
        ("equity:conversions", "USDC", "-10.00"),
        ("expenses:gateway-fees", "USDC", "0.25"),
        ("assets:ebioro:USDC", "USDC", "9.75"),
    )
    (entry,) = plan("payment", payment_payload(settlement_amount=None, settlement_fee=None))
    assert bare(entry)[2:] == postings(
        ("equity:conversions", "USDC", "-10.00"),
        ("assets:ebioro:USDC", "USDC", "10.00"),
    )


def test_a_paid_payment_without_any_usdc_amount_posts_nothing() -> None:
    assert plan("payment", payment_payload(amount_paid=None, settlement_amount=None)) == []


@pytest.mark.parametrize(
    "status", ["open", "processing", "underpaid", "expired", "canceled", "failed"]
)
def test_unpaid_statuses_post_nothing_until_money_arrives(status: str) -> None:
    assert plan("payment", payment_payload(status=status, amount_paid=0, settlement_fee=0)) == []
    assert plan("payment", payment_payload(status=status, amount_paid=None)) == []


@pytest.mark.parametrize("status", ["underpaid", "expired", "open"])
def test_money_received_on_an_unsettled_payment_is_a_deposit(status: str) -> None:
    (entry,) = plan("payment", payment_payload(status=status, amount_paid=400, settlement_fee=0))
    assert bare(entry) == postings(
        ("assets:ebioro:USDC", "USDC", "4.00"),
        ("liabilities:ebioro:deposits", "USDC", "-4.00"),
    )
    assert [p.value for p in entry.postings] == [D("4.00"), D("-4.00")]  # 10 USD for 10 USDC


@pytest.mark.parametrize("status", sorted(SALE_STATUSES))
def test_sale_statuses_post_the_sale(status: str) -> None:
    assert len(plan("payment", payment_payload(status=status))) == 1


def test_the_doc_refund_posts_and_its_open_payment_does_not(ebioro_fixture: Load) -> None:
    doc = ebioro_fixture("refund.json")
    assert plan("payment", doc["payment"]) == []  # status open: nothing came in yet

    (entry,) = plan("refund", doc)
    assert entry.key == "ebioro:refund:rf_fpaBPVF1t_:v1"
    assert bare(entry) == postings(
        ("assets:ebioro:USDC", "USDC", "-10.00"),
        ("income:refunds", "USDC", "10.00"),
    )
    # refunds carry no timestamp: dated by their embedded payment's updatedAt
    assert entry.date == datetime.fromisoformat(doc["payment"]["updatedAt"].replace("Z", "+00:00"))
    assert "of payment pt_AEtKAcN9d-" in entry.description


@pytest.mark.parametrize("status", ["open", "processing", "failed"])
def test_refunds_not_done_post_nothing(status: str, ebioro_fixture: Load) -> None:
    assert plan("refund", {**ebioro_fixture("refund.json"), "status": status}) == []


def test_a_status_change_with_the_same_money_posts_nothing_new() -> None:
    (sale,) = plan("payment", payment_payload())
    later = payment_payload(status="refunded", refunded=True, updatedAt="2024-05-01T00:00:00Z")
    assert plan_entries(snap("payment", later, 2), sale, PRECISION, DERIVERS) == []


def test_a_refund_that_fails_after_completing_is_reversed(ebioro_fixture: Load) -> None:
    doc = ebioro_fixture("refund.json")
    (done,) = plan("refund", doc)
    failed = snap("refund", {**doc, "status": "failed"}, 2)
    (reversal,) = plan_entries(failed, done, PRECISION, DERIVERS)
    assert reversal.reverses_key == done.key
    assert bare(reversal) == tuple(Posting(p.account, p.currency, -p.amount) for p in bare(done))
    assert [p.value for p in reversal.postings] == [
        None if p.value is None else -p.value for p in done.postings
    ]


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("payment", payment_payload(amount={"value": 1000, "currency": "MXN"}), "MXN"),
        ("payment", payment_payload(amount={"value": "10.00", "currency": "USD"}), "amount.value"),
        ("payment", payment_payload(amount=None), "amount: missing"),
        ("payment", payment_payload(amount_paid="ten"), "amount_paid"),
        ("refund", {"refund_id": "rf_1", "status": "refunded", "amount": {"value": 5}}, "asset_id"),
    ],
)
def test_unpostable_snapshots_say_why(kind: str, payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnpostableSnapshot, match=reason):
        plan(kind, payload)


def test_the_entries_pass_bean_check(ebioro_fixture: Load, bean_check: Any) -> None:
    entries = [
        *plan("payment", payment_payload(amount_paid=990, settlement_fee=D("24.75"))),
        *plan("refund", ebioro_fixture("refund.json")),
    ]
    out = io.StringIO()
    assert write_beancount(entries, out) == 2
    text = out.getvalue()
    result = bean_check(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"Equity:Conversions +10\.00 USD\n.*\n +Equity:Conversions +-10\.00 USDC", text
    )
    # each leg carries its USD worth, the day's quote is a price, the operating currency is set
    assert re.search(r"Assets:Ebioro:USDC +9\.6525 USDC\n +value: \"9\.65 USD\"", text)
    assert re.search(r"\d{4}-\d\d-\d\d price USDC 1 USD", text)
    assert 'option "operating_currency" "USD"' in text


cents = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)


@given(
    status=st.sampled_from(sorted(SALE_STATUSES)),
    paid=cents,
    due=cents,
    fee=cents,
    remaining=cents,
    price=st.integers(0, 10**9),
)
def test_every_sale_balances_and_suspense_matches_the_settlement_finding(
    status: str, paid: Decimal, due: Decimal, fee: Decimal, remaining: Decimal, price: int
) -> None:
    payload = payment_payload(
        status=status,
        amount={"value": price, "currency": "EUR"},
        amount_paid=paid,
        amount_received=paid,
        amount_remaining=remaining,
        settlement_amount=due,
        settlement_fee=fee,
    )
    entries = plan("payment", payload)
    # beyond tolerance: short → suspense, over → a deposit owed to the customer
    unexplained = {"assets:suspense:ebioro:payment:pt_ABC123", "liabilities:ebioro:deposits"}
    suspense = [p.amount for e in entries for p in e.postings if p.account in unexplained]
    for entry in entries:
        assert all(total == 0 for total in balances(entry.postings).values())
    found = payment_rule(snap("payment", payload), PRECISION)
    assert suspense == [f.difference for f in found if f.check == "settlement"]
