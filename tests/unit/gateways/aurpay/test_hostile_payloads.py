"""Hostile Aurpay fields: every value that reaches a bounded column or a parser is checked, and
a bad one quarantines only its own record (with its raw JSON and the reason)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import jsonx
from worker.gateways.aurpay.paging import parse_page
from worker.gateways.aurpay.payloads import (
    InvalidRecord,
    parse_order,
    parse_refund_info,
    parse_transaction,
)

ORDER: dict[str, Any] = {
    "order_id": "20250207040935220628",
    "status": "SUCCESS",
    "currency": "BTC",
    "amount": "0.00102549",
    "fee": "0.00000820392",
    "create_time": "2025-02-06T00:00:00",
}
TX: dict[str, Any] = {
    "tx_id": "9f0c",
    "status": "SUCCESS",
    "tx_type": "ORDER",
    "currency": "BTC",
    "amount": "1",
}
REFUND: dict[str, Any] = {"order_id": "1", "currency": "BTC", "amount": 1, "network_fee": 0.1}


def wire(obj: Any) -> Any:
    return jsonx.loads(jsonx.dumps(obj))


HOSTILE_ORDERS: list[tuple[dict[str, Any], str]] = [
    ({"order_id": "9" * 129}, "order_id: 129 characters, longer than the 128"),
    ({"order_id": ""}, "order_id: missing"),
    ({"order_id": "1 2"}, "order_id: contains whitespace"),
    ({"order_id": " 12"}, "order_id: contains whitespace"),
    ({"order_id": "12\u0000"}, "order_id: contains whitespace or unprintable"),
    ({"order_id": "12\u200b"}, "order_id: contains whitespace or unprintable"),  # zero width
    ({"order_id": 12}, "order_id: expected a string, got number"),
    ({"create_time": "9999-12-31T23:59:59-05:00"}, "create_time: not an ISO-8601 time in range"),
    ({"create_time": "0001-01-01T00:00:00+05:00"}, "create_time: not an ISO-8601 time in range"),
    ({"create_time": "2025-02-30T00:00:00"}, "create_time: not an ISO-8601 time"),
    ({"create_time": 1738800000}, "create_time: expected an ISO-8601 string, got number"),
    ({"amount": "１２３"}, "amount: not a decimal amount"),
    ({"amount": "1_000"}, "amount: not a decimal amount"),
    ({"amount": " 1.5 "}, "amount: not a decimal amount"),
    ({"amount": "NaN"}, "amount: not a decimal amount"),
    ({"amount": "Infinity"}, "amount: not a decimal amount"),
    ({"amount": "-1"}, "amount: negative amount"),
    ({"amount": "1E+99"}, "amount: amount out of range"),
    ({"fee": "-0.0001"}, "fee: negative amount"),
    ({"obtained": "-1"}, "obtained: negative amount"),
    ({"vs_price": "-100.0"}, "vs_price: negative amount"),
    ({"currency": "X" * 81}, "currency: 81 characters, longer than the 80"),
    ({"currency": "USDT TRC20"}, "currency: contains whitespace"),
    ({"tx_id": "t" * 129}, "tx_id: 129 characters"),
    ({"tx_hash_list": "abc"}, "tx_hash_list: expected an array of strings"),
]


@pytest.mark.parametrize(("changes", "reason"), HOSTILE_ORDERS)
def test_a_hostile_order_field_is_rejected_with_its_reason(
    changes: dict[str, Any], reason: str
) -> None:
    raw = wire({**ORDER, **changes})
    with pytest.raises(InvalidRecord) as caught:
        parse_order(raw)
    rejected = caught.value.rejected
    assert reason in rejected.reason
    assert rejected.raw == raw


def test_a_rejected_order_keeps_its_id_only_when_the_column_can_hold_it() -> None:
    for order_id, kept in [("9" * 128, "9" * 128), ("9" * 129, None), ("1 2", None), (7, None)]:
        with pytest.raises(InvalidRecord) as caught:
            parse_order({**ORDER, "order_id": order_id, "amount": "x"})
        assert caught.value.rejected.external_id == kept


def test_the_longest_id_the_ledger_holds_and_far_future_naive_times_are_accepted() -> None:
    order = parse_order({**ORDER, "order_id": "9" * 128, "create_time": "9999-12-31T23:59:59"})
    assert order.external_id == "9" * 128
    assert order.create_time is not None and order.create_time.year == 9999  # the engine's call


def test_a_lone_surrogate_is_quarantined_with_its_raw_json_escaped() -> None:
    raw = jsonx.loads('{"order_id":"1","status":"SUCCESS","currency":"BTC","amount":"1",'
                      '"remark":"bad \\ud800 text"}')  # fmt: skip
    with pytest.raises(InvalidRecord) as caught:
        parse_order(raw)
    rejected = caught.value.rejected
    assert "lone surrogate" in rejected.reason
    assert isinstance(rejected.raw, str) and "\\ud800" in rejected.raw
    rejected.raw.encode("utf-8")  # storable
    assert jsonx.loads(rejected.raw) == raw  # and still the record that was received
    assert rejected.external_id == "1"


def test_a_transaction_amount_may_be_negative_but_never_its_fee() -> None:
    # A withdrawal lowers the balance; whether Aurpay signs it is not documented (A-STAT-7).
    assert parse_transaction({**TX, "amount": "-1", "obtained": "-1"}).amount == -1
    with pytest.raises(InvalidRecord, match="fee: negative amount"):
        parse_transaction({**TX, "fee": "-0.1"})
    with pytest.raises(InvalidRecord, match="order_id: 129 characters"):
        parse_transaction({**TX, "order_id": "1" * 129})
    with pytest.raises(InvalidRecord, match="amount: not a decimal amount"):
        parse_transaction({**TX, "amount": "1_0"})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount": -7.6883}, "amount: negative amount"),
        ({"network_fee": "-0.353"}, "network_fee: negative amount"),
        ({"obtained": "７"}, "obtained: not a decimal amount"),
        ({"currency": ""}, "currency: missing"),
        ({"order_id": "1" * 129}, "order_id: 129 characters"),
    ],
)
def test_a_hostile_refund_info_is_rejected(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        parse_refund_info(wire({**REFUND, **changes}))
    assert reason in caught.value.rejected.reason


def test_a_page_of_hostile_orders_keeps_every_valid_neighbour() -> None:
    good = [{**ORDER, "order_id": f"G{n}"} for n in range(3)]
    hostile = [{**ORDER, "order_id": f"H{n}", **changes} for n, (changes, _) in
               enumerate(HOSTILE_ORDERS)]  # fmt: skip
    items = [good[0], *hostile[:10], good[1], *hostile[10:], good[2]]
    frame = {"page": 1, "size": 100, "total": len(items), "max_page": 1, "data": items}

    page = parse_page(wire(frame), parse_order)

    assert [o.order_id for o in page.records] == ["G0", "G1", "G2"]
    assert len(page.rejected) == len(HOSTILE_ORDERS)
