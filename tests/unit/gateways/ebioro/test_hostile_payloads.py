"""Hostile Ebioro fields: ids, codes, amounts and times are checked at the edge, and a bad one
quarantines only its own record."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import jsonx
from worker.gateways.ebioro.payloads import InvalidRecord, parse_payment, parse_refund

PAYMENT: dict[str, Any] = {
    "id": "pt_AEtKAcN9d-",
    "status": "paid",
    "amount": {"value": 1000, "currency": "USD"},
    "settlement_currency": "USDC",
    "settlement_amount": 1000,
    "settlement_fee": 25,
    "asset_id": "USDC:GBBD47IF6LWK7P7MDEVSCWR7DPUWV3NY3DTQEVFL4NAT4AQH3ZLLFLA5",
    "createdAt": "2023-11-18T20:46:15.652Z",
}
REFUND: dict[str, Any] = {
    "refund_id": "rf_0123456789",
    "status": "refunded",
    "amount": {"asset_id": "USDC:GA5Z", "value": 500},
    "payment": {"id": "pt_AEtKAcN9d-"},
}


def wire(obj: Any) -> Any:
    return jsonx.loads(jsonx.dumps(obj))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": "p" * 129}, "id: 129 characters, longer than the 128"),
        ({"id": "pt 1"}, "id: contains whitespace"),
        ({"settlement_currency": "U" * 81}, "settlement_currency: 81 characters"),
        ({"settlement_currency": ""}, "settlement_currency: empty"),
        ({"settlement_currency": 5}, "settlement_currency: expected a string"),
        ({"asset_id": "U" * 81 + ":GBBD"}, "asset_id: 81 characters"),
        ({"asset_id": ":GBBD"}, "asset_id: empty"),
        ({"settlement_fee": "６６.５７５"}, "settlement_fee: not a decimal amount"),
        ({"settlement_fee": " 66.575"}, "settlement_fee: not a decimal amount"),
        ({"settlement_amount": "1_000"}, "settlement_amount: not a decimal amount"),
        ({"amount_paid": "-1"}, "amount_paid: negative amount"),
        ({"amount": {"value": 10**50, "currency": "USD"}}, "amount.value: amount out of range"),
        ({"createdAt": "9999-12-31T23:59:59-05:00"}, "createdAt: not an ISO-8601 time in range"),
        ({"updatedAt": "2024-13-01T00:00:00Z"}, "updatedAt: not an ISO-8601 time"),
        ({"history": [{"time": 10**20}]}, "history[0].time: 100000000000000000000 ms is out"),
    ],
)
def test_a_hostile_payment_field_is_rejected(changes: dict[str, Any], reason: str) -> None:
    raw = wire({**PAYMENT, **changes})
    with pytest.raises(InvalidRecord) as caught:
        parse_payment(raw)
    rejected = caught.value.rejected
    assert reason in rejected.reason
    assert rejected.raw == raw
    kept = raw["id"] if len(raw["id"]) <= 128 and " " not in raw["id"] else None
    assert rejected.external_id == kept


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"refund_id": "r" * 129}, "refund_id: 129 characters"),
        ({"payment": {"id": "p" * 129}}, "payment.id: 129 characters"),
        ({"amount": {"asset_id": "USDC GA5Z", "value": 1}}, "amount.asset_id: contains whitespace"),
        ({"amount": {"asset_id": "USDC:GA5Z", "value": "1_0"}}, "amount.value: not a decimal"),
    ],
)
def test_a_hostile_refund_field_is_rejected(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        parse_refund(wire({**REFUND, **changes}))
    assert reason in caught.value.rejected.reason


def test_the_documented_shapes_pass() -> None:
    payment = parse_payment(wire(PAYMENT))
    assert payment.settlement_fee == 25 and payment.external_id == "pt_AEtKAcN9d-"
    assert parse_refund(wire(REFUND)).asset_code == "USDC"
