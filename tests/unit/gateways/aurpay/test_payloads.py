"""Aurpay payload validation: exact Decimals, the doc fixtures, quarantined items, time zones."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import jsonx
from ledger.model import RawRecord
from tests.helpers.fakes import walk
from worker.gateways.aurpay.paging import parse_page
from worker.gateways.aurpay.payloads import (
    InvalidRecord,
    Order,
    parse_order,
    parse_refund_info,
    parse_transaction,
)
from worker.gateways.base.records import InvalidPage

Load = Callable[[str], Any]

ORDER = {"order_id": "20240806071926377966", "status": "SUCCESS", "currency": "USDT-TRC20"}


def assert_no_float(record: Any) -> None:
    floats = [v for v in walk(record) if isinstance(v, float)]
    assert floats == []


def test_string_amount_keeps_every_digit() -> None:
    order = parse_order(jsonx.loads(jsonx.dumps({**ORDER, "amount": "1234.123456789012345678"})))

    assert order.amount == Decimal("1234.123456789012345678")
    assert str(order.amount) == "1234.123456789012345678"
    assert_no_float(order)


def test_refund_info_numbers_subtract_exactly(aurpay_fixture: Load) -> None:
    data = aurpay_fixture("refund-info-response.json")["data"]

    refund = parse_refund_info(data)

    assert refund.network_fee is not None
    assert refund.amount - refund.network_fee == Decimal("7.3353") == refund.obtained
    assert (refund.order_id, refund.chain, refund.currency) == (
        "20240614061316661529",
        "TRX",
        "USDT-TRC20",
    )
    assert refund.from_addr == "TMiJBaNdRVABNhZGwBx5vKWYCafCwGzuWn"
    assert refund.refund_et == 60  # kept as sent: its unit is not documented
    assert refund.raw is data
    assert_no_float(refund)


# Order amounts are never negative (see payloads.Amount); the range is the journal's.
@given(st.decimals(min_value=0, max_value=10**30, allow_nan=False, allow_infinity=False, places=18))
def test_any_decimal_survives_as_string_or_json_number(amount: Decimal) -> None:
    for literal in (f'"{amount}"', str(amount)):
        text = '{"order_id":"1","status":"PENDING","currency":"BTC","amount":' + literal + "}"
        parsed = parse_order(jsonx.loads(text))
        assert parsed.amount == amount
        assert_no_float(parsed)


def test_callback_order_fixture_parses_as_an_order(aurpay_fixture: Load) -> None:
    raw = aurpay_fixture("callback-order.json")

    order = parse_order(raw)

    assert order.order_id == "20250207040935220628"
    assert order.status == "PENDING"
    assert order.amount == Decimal("0.00102549")
    assert order.vs_price == Decimal("100.0")
    assert order.fee == Decimal("0.00000820392")
    assert order.obtained is None and order.from_addr is None and order.tx_hash is None
    assert order.refund is False
    assert order.tx_hash_list == ()
    assert order.create_time == datetime(2025, 2, 6, tzinfo=UTC)
    assert order.to_raw_record() == RawRecord("aurpay", "order", "20250207040935220628", raw)
    assert_no_float(order)


def test_partial_list_page_fixture(aurpay_fixture: Load) -> None:
    page = parse_page(aurpay_fixture("orders-list-response.partial.json")["data"], parse_order)

    assert (page.page, page.size, page.total, page.max_page) == (1, 10, 43, 5)
    assert page.rejected == ()
    [order] = page.records
    assert order.order_id == "20240806071926377966"
    assert order.order_type == "INVOICE"
    assert order.amount == Decimal("19.0012")
    assert order.create_time is None  # list items carry only the first fields
    assert_no_float(page)


BAD_ITEMS = [
    ({"status": "PENDING", "currency": "BTC", "amount": "1"}, "order_id: missing"),
    ({**ORDER, "amount": "abc"}, "amount: not a decimal amount: 'abc'"),
    ({**ORDER, "amount": "1", "status": "PAID"}, "status: unknown status 'PAID'"),
    ({**ORDER, "amount": True}, "amount: not an amount: True"),
    ({**ORDER, "amount": [1]}, "amount: amount must be a decimal string or JSON number"),
    ({**ORDER, "amount": "1", "order_id": 42}, "order_id: expected a string, got number"),
    ({**ORDER, "amount": "1", "create_time": "yesterday"}, "create_time: not an ISO-8601 time"),
    ({**ORDER, "amount": "1", "refund": "no"}, "refund: expected a boolean, got string"),
    ("not an object", "expected a JSON object, got string"),
]


def test_bad_items_are_rejected_and_the_rest_of_the_page_is_kept() -> None:
    good = [{**ORDER, "order_id": f"A{n}", "amount": f"{n}.5"} for n in range(3)]
    items = [good[0], *(item for item, _ in BAD_ITEMS), good[1], good[2]]
    text = jsonx.dumps({"page": 2, "size": 20, "total": 40, "max_page": 2, "data": items})

    page = parse_page(jsonx.loads(text), parse_order)

    assert [o.order_id for o in page.records] == ["A0", "A1", "A2"]
    assert len(page.rejected) == len(BAD_ITEMS)
    for rejected, (item, reason) in zip(page.rejected, BAD_ITEMS, strict=True):
        assert rejected.source == "aurpay" and rejected.kind == "order"
        assert rejected.reason.startswith(reason)
        assert rejected.raw == item
    assert page.rejected[1].external_id == ORDER["order_id"]
    assert page.rejected[0].external_id is None


def test_parse_order_raises_a_value_error_carrying_the_rejected() -> None:
    raw = {**ORDER, "amount": "abc"}
    with pytest.raises(ValueError, match="amount: not a decimal amount") as caught:
        parse_order(raw)
    assert isinstance(caught.value, InvalidRecord)
    assert caught.value.rejected.raw is raw
    assert caught.value.rejected.external_id == ORDER["order_id"]


def test_optional_fields_may_be_null() -> None:
    nulls = {name: None for name in ("vs_price", "fee", "obtained", "create_time", "refund")}
    order = parse_order({**ORDER, "amount": 5, **nulls, "tx_hash_list": None})
    assert order.amount == Decimal(5)
    assert order.fee is None and order.create_time is None and order.tx_hash_list == ()


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", datetime(2025, 2, 6, 0, 0, tzinfo=UTC)),
        ("Asia/Shanghai", datetime(2025, 2, 5, 16, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2025, 2, 6, 5, 0, tzinfo=UTC)),
    ],
)
def test_naive_timestamps_read_in_the_configured_zone(zone: str, expected: datetime) -> None:
    order = parse_order(
        {**ORDER, "amount": "1", "create_time": "2025-02-06T00:00:00"}, ZoneInfo(zone)
    )

    assert order.create_time == expected
    assert order.create_time.tzinfo is UTC


def test_timestamps_with_a_zone_ignore_the_setting() -> None:
    raw = {**ORDER, "amount": "1", "update_time": "2025-02-06T08:00:00+08:00"}
    order = parse_order(raw, ZoneInfo("America/New_York"))
    assert order.update_time == datetime(2025, 2, 6, 0, 0, tzinfo=UTC)


def test_transaction_records() -> None:
    raw = jsonx.loads(
        '{"user_id":"mct-07d283468bf8","tx_id":"ca1f0db3","tx_type":"ORDER","status":"SUCCESS",'
        '"chain":"TRX","currency":"USDT-TRC20","amount":"10.5","obtained":null,"fee":0.353,'
        '"order_id":"20240614061316661529","create_time":"2024-06-14T06:13:16"}'
    )

    tx = parse_transaction(raw)

    assert (tx.tx_id, tx.tx_type, tx.status, tx.chain) == ("ca1f0db3", "ORDER", "SUCCESS", "TRX")
    assert tx.amount == Decimal("10.5") and tx.fee == Decimal("0.353") and tx.obtained is None
    assert tx.order_id == "20240614061316661529"
    assert tx.create_time == datetime(2024, 6, 14, 6, 13, 16, tzinfo=UTC)
    assert tx.to_raw_record() == RawRecord("aurpay", "transaction", "ca1f0db3", raw)
    with pytest.raises(InvalidRecord, match="tx_id: missing"):
        parse_transaction({k: v for k, v in raw.items() if k != "tx_id"})


def test_refund_info_raw_record_is_keyed_by_order(aurpay_fixture: Load) -> None:
    data = aurpay_fixture("refund-info-response.json")["data"]
    record = parse_refund_info(data).to_raw_record()
    assert record == RawRecord("aurpay", "refund", "20240614061316661529", data)


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"page": 1, "size": 10, "total": 1, "data": []},
        {"page": "1", "size": 10, "total": 1, "max_page": 1, "data": []},
        {"page": 1, "size": 10, "total": 1, "max_page": 1, "data": {"order_id": "x"}},
    ],
)
def test_a_page_frame_out_of_shape_is_invalid(data: Any) -> None:
    with pytest.raises(InvalidPage):
        parse_page(data, parse_order)


def test_records_are_frozen() -> None:
    order = parse_order({**ORDER, "amount": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.amount = Decimal(2)  # type: ignore[misc]
    assert isinstance(order, Order)
