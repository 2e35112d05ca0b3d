"""Ebioro payload validation: the doc fixtures, exact amounts, times, quarantined items, pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import jsonx
from ledger.model import RawRecord
from tests.helpers.fakes import walk
from worker.gateways.base.records import InvalidPage
from worker.gateways.ebioro.paging import parse_page
from worker.gateways.ebioro.payloads import (
    FiatAmount,
    InvalidRecord,
    Payment,
    parse_payment,
    parse_refund,
)

Load = Callable[[str], Any]
D = Decimal
PAYMENT: dict[str, Any] = {
    "id": "pt_ABC123",
    "status": "paid",
    "amount": {"value": 1000, "currency": "USD"},
}


def wire(obj: Any) -> Any:
    return jsonx.loads(jsonx.dumps(obj))


def test_the_doc_refund_and_its_embedded_payment(ebioro_fixture: Load) -> None:
    raw = ebioro_fixture("refund.json")
    refund = parse_refund(raw)

    assert refund.refund_id == "rf_fpaBPVF1t_" and refund.status == "refunded"
    assert refund.asset_id == "USDC:GBBD47IF6LWK7P7MDEVSCWR7DPUWV3NY3DTQEVFL4NAT4AQH3ZLLFLA5"
    assert refund.asset_code == "USDC"
    assert refund.amount == D(1000)  # USDC cents, as sent
    assert refund.payment_id == "pt_AEtKAcN9d-"
    assert refund.settlement_id == raw["settlement_Id"]  # capital I
    assert refund.to_raw_record() == RawRecord("ebioro", "refund", "rf_fpaBPVF1t_", raw)

    payment = parse_payment(raw["payment"])
    assert payment.amount == FiatAmount("USD", 200) and payment.amount.value == D("2.00")
    assert payment.created_at == datetime(2023, 11, 18, 20, 46, 15, 652000, tzinfo=UTC)
    assert payment.expires_at == datetime(2023, 11, 18, 21, 16, 15, 649000, tzinfo=UTC)
    assert payment.settlement_amount == D(2663) and payment.settlement_currency == "USDC"
    assert payment.amount_paid is None and payment.refunded is False
    assert payment.history[0].time == datetime(2024, 4, 26, 9, 47, 7, 333000, tzinfo=UTC)
    assert payment.history[0].description == "Payment created"
    assert payment.to_raw_record() == RawRecord(
        "ebioro", "payment", "pt_AEtKAcN9d-", raw["payment"]
    )
    assert [v for v in walk((refund, payment)) if isinstance(v, float)] == []


def test_the_doc_webhook_payment_state(ebioro_fixture: Load) -> None:
    data = ebioro_fixture("webhook-transaction-updated.json")["data"]
    payment = parse_payment(data)

    assert (payment.status, payment.settlement_status) == ("paid", "paid")
    assert (payment.amount_paid, payment.amount_received, payment.amount_remaining) == (
        D(1000),
        D(1000),
        D(0),
    )
    assert payment.settlement_fee == D(25) and payment.created_at is None
    assert [e.description for e in payment.history] == ["Payment created", "Customer paid"]


@pytest.mark.parametrize("fee", [D("66.575"), "66.575"])
def test_a_fractional_fee_keeps_every_digit(fee: Any) -> None:
    payment = parse_payment(wire({**PAYMENT, "settlement_amount": 2663, "settlement_fee": fee}))
    assert payment.settlement_fee == D("66.575") and str(payment.settlement_fee) == "66.575"


@given(st.decimals(min_value=0, max_value=10**12, places=7, allow_nan=False))
def test_any_cents_amount_round_trips_exactly(cents: Decimal) -> None:
    payment = parse_payment(wire({**PAYMENT, "amount_paid": cents}))
    assert payment.amount_paid == cents
    assert payment.amount_paid.as_tuple() == cents.as_tuple()


def test_naive_and_offset_times_become_utc() -> None:
    payment = parse_payment(
        {**PAYMENT, "createdAt": "2024-01-01T10:00:00", "updatedAt": "2024-01-01T12:00:00+02:00"}
    )
    assert payment.created_at == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert payment.updated_at == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_every_documented_status_is_accepted() -> None:
    for status in ("open", "processing", "paid", "underpaid", "underpaid_accepted", "expired",
                   "canceled", "failed", "refunded"):  # fmt: skip
        assert parse_payment({**PAYMENT, "status": status}).status == status
    for status in ("open", "processing", "refunded", "failed"):
        refund = {"refund_id": "rf_1", "status": status, "payment": {"id": "pt_1"},
                  "amount": {"asset_id": "USDC:G", "value": 1}}  # fmt: skip
        assert parse_refund(refund).status == status


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "id: missing"),
        ({"id": 7}, "id: expected a string, got number"),
        ({"status": "cancelled"}, "status: unknown status 'cancelled'"),
        ({"status": None}, "status: missing"),
        ({"amount": None}, "amount: missing"),
        ({"amount": [1000]}, "amount: expected an object, got array"),
        ({"amount": {"value": "12.34", "currency": "USD"}}, "amount.value: expected a whole"),
        ({"amount": {"value": D("10.5"), "currency": "USD"}}, "amount.value: expected a whole"),
        ({"amount": {"value": -1, "currency": "USD"}}, "amount.value: expected a whole"),
        ({"amount": {"value": True, "currency": "USD"}}, "amount.value: expected a whole"),
        ({"amount": {"value": 1000, "currency": "MXN"}}, "unsupported fiat currency 'MXN'"),
        ({"amount": {"value": 1000}}, "amount.currency: missing"),
        ({"settlement_fee": "-1"}, "settlement_fee: negative amount"),
        ({"amount_paid": "ten"}, "amount_paid: not a decimal amount"),
        ({"amount_paid": "1E+99"}, "amount_paid: amount out of range"),
        ({"createdAt": "yesterday"}, "createdAt: not an ISO-8601 time"),
        ({"history": [{"time": "1714124827333"}]}, "history[0].time: expected epoch"),
        ({"history": [{"status": "success"}]}, "history[0].time: missing"),
        ({"history": {}}, "history: expected an array"),
        ({"refunded": "yes"}, "refunded: expected a boolean"),
    ],
)
def test_a_bad_payment_is_rejected_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    raw = wire({**PAYMENT, **changes})
    with pytest.raises(InvalidRecord) as caught:
        parse_payment(raw)
    rejected = caught.value.rejected
    assert reason in rejected.reason
    assert (rejected.source, rejected.kind, rejected.raw) == ("ebioro", "payment", raw)
    assert rejected.external_id == (raw["id"] if isinstance(raw.get("id"), str) else None)


REFUND: dict[str, Any] = {
    "refund_id": "rf_1",
    "status": "refunded",
    "amount": {"asset_id": "USDC:GA5Z", "value": 500},
    "payment": {"id": "pt_1"},
}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"refund_id": None}, "refund_id: missing"),
        ({"status": "done"}, "status: unknown status 'done'"),
        ({"amount": {"value": 500}}, "amount.asset_id: missing"),
        ({"amount": {"asset_id": "USDC:GA5Z"}}, "amount.value: missing"),
        ({"amount": {"asset_id": "USDC:GA5Z", "value": "-5"}}, "amount.value: negative"),
        ({"payment": None}, "payment: missing"),
        ({"payment": {"status": "paid"}}, "payment.id: missing"),
        ({"settlement_Id": 12}, "settlement_Id: expected a string"),
    ],
)
def test_a_bad_refund_is_rejected_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    raw = wire({**REFUND, **changes})
    with pytest.raises(InvalidRecord, match="invalid ebioro refund") as caught:
        parse_refund(raw)
    assert reason in caught.value.rejected.reason
    assert caught.value.rejected.kind == "refund" and caught.value.rejected.raw == raw


@pytest.mark.parametrize("raw", [[], "pt_1", None, 7])
def test_a_non_object_is_rejected(raw: Any) -> None:
    with pytest.raises(InvalidRecord, match="expected a JSON object"):
        parse_payment(raw)


# --- pages


def page_body(items: list[Any], **meta: Any) -> dict[str, Any]:
    frame = {"totalItems": 3, "itemCount": len(items), "itemsPerPage": 2, "totalPages": 2,
             "currentPage": 1}  # fmt: skip
    return {"items": items, "meta": {**frame, **meta}}


def test_a_page_keeps_good_records_and_rejects_bad_items_apart() -> None:
    body = wire(page_body([PAYMENT, {**PAYMENT, "id": "pt_bad", "status": "??"}]))
    page = parse_page(body, parse_payment, 1, 2)

    assert [p.payment_id for p in page.records] == ["pt_ABC123"]
    assert [r.external_id for r in page.rejected] == ["pt_bad"]
    assert (page.total_items, page.total_pages, page.current_page) == (3, 2, 1)
    assert all(isinstance(p, Payment) for p in page.records)
    assert not page.is_last(1)


@pytest.mark.parametrize(
    ("items", "meta", "number", "limit", "last"),
    [
        ([PAYMENT, PAYMENT], {}, 1, 2, False),
        ([PAYMENT, PAYMENT], {}, 2, 2, True),  # currentPage >= totalPages (our page number)
        ([PAYMENT, PAYMENT], {"totalPages": 9}, 9, 2, True),
        ([PAYMENT], {"totalPages": 9}, 3, 2, True),  # shorter than the limit
        ([], {"totalPages": 9}, 3, 2, True),  # empty
        ([PAYMENT], {"totalPages": 9, "itemsPerPage": 1}, 3, 2, False),  # server's own size
        ([], {"totalPages": 0, "totalItems": 0}, 1, 100, True),
    ],
)
def test_where_a_walk_ends(
    items: list[Any], meta: dict[str, Any], number: int, limit: int, last: bool
) -> None:
    page = parse_page(wire(page_body(items, **meta)), parse_payment, number, limit)
    assert page.is_last(number) is last


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "page: expected a JSON object"),
        ({"meta": {}}, "items: expected an array"),
        ({"items": []}, "meta: expected an object"),
        ({"items": [], "meta": {"totalItems": 0, "currentPage": 1}}, "meta.totalPages"),
        (page_body([], totalPages="2"), "meta.totalPages"),
        (page_body([], currentPage=-1), "meta.currentPage"),
    ],
)
def test_a_page_frame_out_of_shape_is_invalid(body: Any, message: str) -> None:
    with pytest.raises(InvalidPage, match=message):
        parse_page(wire(body), parse_payment, 1, 2)
