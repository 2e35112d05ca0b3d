"""The Ebioro sandbox world: deterministic, shaped like the Ebioro fixtures, honest about its
truth, and verifying digest signatures with the doc's vectors (docs/gateways/ebioro.md
(E-SIGN-7))."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger import jsonx
from ledger.reconcile.regressions import REGRESSION_RULES
from sandbox.ebioro import (
    Conflict,
    EbioroCredentials,
    EbioroSandboxConfig,
    SandboxError,
    UnknownObject,
    World,
    webhook_body,
)
from sandbox.ebioro import truth as oracle
from sandbox.ebioro.access import refusal
from worker.gateways.ebioro.auth import sign_request, sign_webhook
from worker.gateways.ebioro.plan import make_plan

Load = Callable[[str], Any]
# Extra payment fields the doc shows outside the refund example: in the list/create examples and
# the webhook (docs/gateways/ebioro.md (E-PAY-1, E-HOOK-1)). ``checkout_id`` is on listed payments,
# not on embedded ones (docs/gateways/ebioro.md (E-PAY-2)).
AMOUNT_FIELDS = {"settlement_fee", "amount_paid", "amount_received", "amount_remaining"}
# Null until the state they describe exists (the refund example, placeholder data, shows an
# ``open`` payment with both hashes set).
NULL_UNTIL_PAID = {"stellarTxId", "sender_account"}
NULL_UNTIL_SETTLED = {"settlement_stellarTxId"}
UNPAID = {"open", "processing", "expired", "canceled"}
SECRET, TIMESTAMP = "sk_test_example_secret", "1714067192"
VECTORS = [  # (path, method, body, expected hex), docs/gateways/ebioro.md (E-SIGN-7)
    ("/payments", "GET", b"", "947770dc582388d247f01409c5b4b5211ead4df987aaf28a7dbc914d34202977"),
    (
        "/payments?page=2&limit=50",
        "GET",
        b"",
        "b11d6a07245efea6139ecf8f3cb477ca5be4cb2c0e8df9d896b8127fbc9ff939",
    ),
    (
        "/payments",
        "POST",
        b'{"amount":{"value":1000,"currency":"USD"},"description":"Order #1234",'
        b'"redirectUrl":"https://example.com/ok"}',
        "a6e40e2a6c055e179c6ab8dbc19a9b63f4712b621e8e1c4e6678c1ab96a3f0d3",
    ),
    (
        "/payments/pt_ABC123/refunds",
        "POST",
        b'{"amount":{"value":500,"asset_id":"USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5'
        b'RE34K4KZVN"},"description":"Refund"}',
        "5413afda4acbe3ff27b288f3f87125d40d926c0c04b1662b3dfd17fe4ed1260b",
    ),
]


def json_type(value: Any) -> str:
    parsed = jsonx.loads(jsonx.dumps(value))
    return (
        "number"
        if isinstance(parsed, int | Decimal) and not isinstance(parsed, bool)
        else (type(parsed).__name__)
    )


@pytest.fixture(scope="module")
def world() -> World:
    return World(EbioroSandboxConfig(seed=7, payments=300, mismatch_rate=0.15, dust_rate=0.1))


def real(rows: list[dict[str, Any]], world: World, endpoint: str) -> list[dict[str, Any]]:
    junk = [r.record for r in world.invalid_records() if r.endpoint == endpoint]
    return [row for row in rows if row not in junk]


def test_same_seed_same_world_and_different_seed_differs() -> None:
    config = EbioroSandboxConfig(seed=11, payments=80, rate_invalid_record=0.1)
    first, second = World(config).truth(), World(config).truth()
    assert jsonx.canonical(first) == jsonx.canonical(second)
    other = World(EbioroSandboxConfig(seed=12, payments=80, rate_invalid_record=0.1)).truth()
    assert jsonx.canonical(other) != jsonx.canonical(first)


def test_refunds_have_exactly_the_fields_and_types_of_the_refund_example(
    world: World, ebioro_fixture: Load
) -> None:
    example = ebioro_fixture("refund.json")
    embedded_fields = [*example["payment"], *AMOUNT_FIELDS]
    planted = world.expected_mismatches()
    for refund in real(world.truth()["refunds"], world, "refunds"):
        assert list(refund) == list(example)
        unsettled = refund["status"] != "refunded" or (
            (oracle.RULE_REFUND_SETTLEMENT, refund["refund_id"]) in planted
        )
        for name, value in example.items():
            if not (name == "settlement_Id" and unsettled and refund[name] in (None, "")):
                assert json_type(refund[name]) == json_type(value), name
        payment = refund["payment"]
        assert sorted(payment) == sorted(embedded_fields)
        assert_payment_types(payment, example["payment"])


def test_listed_payments_add_only_checkout_id(world: World, ebioro_fixture: Load) -> None:
    example = ebioro_fixture("refund.json")["payment"]
    for payment in real(world.truth()["payments"], world, "payments"):
        assert sorted(payment) == sorted([*example, *AMOUNT_FIELDS, "checkout_id"])
        assert payment["checkout_id"] == payment["id"]
        assert_payment_types(payment, example)


def assert_payment_types(payment: dict[str, Any], example: dict[str, Any]) -> None:
    webhook = {"settlement_fee": 25, "amount_paid": 1000, "amount_received": 1000}
    for name, value in {**example, **webhook, "amount_remaining": 0}.items():
        unset = (name in NULL_UNTIL_PAID and payment["status"] in UNPAID) or (
            name in NULL_UNTIL_SETTLED and payment["settlement_status"] != "paid"
        )
        expected = "NoneType" if unset else json_type(value)
        assert json_type(payment[name]) == expected, (name, payment["status"])
    assert re.fullmatch(r"pt_[A-Za-z0-9_-]{10}", payment["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payment["createdAt"])
    assert all(isinstance(event["time"], int) for event in payment["history"])


def test_data_covers_the_documented_statuses_units_and_currencies(world: World) -> None:
    truth = world.truth()
    payments = real(truth["payments"], world, "payments")
    statuses = {p["status"] for p in payments}
    assert statuses == {
        "open",
        "processing",
        "paid",
        "underpaid",
        "expired",
        "canceled",
        "refunded",
    }
    assert {p["settlement_status"] for p in payments} == {"open", "processing", "paid"}
    assert {r["status"] for r in real(truth["refunds"], world, "refunds")} == {
        "open",
        "processing",
        "refunded",
        "failed",
    }
    assert {p["mode"] for p in payments} == {"test"}
    assert {"USD", "EUR"} <= {p["amount"]["currency"] for p in payments}
    fees = [p["settlement_fee"] for p in payments]
    assert any(isinstance(f, Decimal) and f != f.to_integral_value() for f in fees)
    for p in payments:  # the inferred 2.5 % fee, exactly (66.575 for 2663)
        assert Decimal(p["settlement_fee"]) == Decimal(p["settlement_amount"]) * Decimal("0.025")
        assert isinstance(p["amount"]["value"], int) and isinstance(p["settlement_amount"], int)
    underpaid = [p for p in payments if p["status"] == "underpaid"]
    assert all(0 < p["amount_paid"] < p["settlement_amount"] for p in underpaid)


def test_every_rule_is_planted_and_in_the_ebioro_plan(world: World) -> None:
    expected = world.expected_mismatches()
    planted_by_seed = set(oracle.RULE_IDS) - {oracle.RULE_REFUNDS_TOTAL}  # needs two refunds
    assert {rule for rule, _ in expected} == planted_by_seed
    # the regression rules judge how an object changes over time, not one seeded world
    assert set(oracle.RULE_IDS) | set(REGRESSION_RULES) == set(make_plan("ebioro").rules)


def test_planted_mismatches_are_visible_in_the_served_objects(world: World) -> None:
    payments = {p["id"]: p for p in world.truth()["payments"] if "id" in p}
    refunds = {r["refund_id"]: r for r in world.truth()["refunds"] if "refund_id" in r}
    for rule, subject in world.expected_mismatches():
        if rule == oracle.RULE_AMOUNTS:
            p = payments[subject]
            sums = (p["amount_paid"] - p["amount_received"]) or (
                p["settlement_amount"] - p["amount_received"] - p["amount_remaining"]
            )
            assert abs(sums) >= 2
        elif rule == oracle.RULE_REFUND_EXCEEDS:
            r = refunds[subject]
            assert r["amount"]["value"] >= r["payment"]["amount_paid"] + 2
        elif rule == oracle.RULE_REFUND_SETTLEMENT:
            assert refunds[subject]["status"] == "refunded"
            assert refunds[subject]["settlement_Id"] in (None, "")
        elif rule == oracle.RULE_REFUND_ASSET:
            r = refunds[subject]
            assert r["amount"]["asset_id"] != r["payment"]["asset_id"]
        else:
            assert rule == oracle.RULE_REFUNDED_WITHOUT_REFUND
            assert payments[subject]["status"] == "refunded"
            assert all(r["payment"]["id"] != subject for r in refunds.values())


def test_dust_is_within_half_a_cent_and_never_expected(world: World) -> None:
    dust = world.dust_cases()
    assert dust and not dust & world.expected_mismatches()
    rounding = world.legit_cases()["amount-received-rounding"]
    assert (oracle.RULE_AMOUNTS, rounding) in dust
    for rule, subject in dust:
        payment = world.payment(subject)
        assert rule == oracle.RULE_AMOUNTS
        difference = abs(payment["amount_paid"] - payment["amount_received"])
        assert 0 < difference <= Decimal("0.001")  # cents: a float artifact, or 0.001 off


def test_the_legitimate_cases_are_planted_and_never_expected(world: World) -> None:
    cases = world.legit_cases()
    assert set(cases) == {"amount-received-rounding", "partial-payment", "refunded-backfill"}
    assert not {subject for _, subject in world.expected_mismatches()} & set(cases.values())
    assert world.payment(cases["partial-payment"])["status"] == "underpaid"
    assert world.held_by_grace() <= world.expected_mismatches()
    assert {rule for rule, _ in world.held_by_grace()} <= {oracle.RULE_REFUNDED_WITHOUT_REFUND}


def test_no_mismatch_rate_plants_nothing() -> None:
    quiet = World(EbioroSandboxConfig(seed=3, payments=150, mismatch_rate=0, dust_rate=0))
    assert quiet.expected_mismatches() == set()
    assert quiet.dust_cases() == set()


def test_pages_are_newest_first_with_the_documented_meta(world: World) -> None:
    page = world.payments_page(2, 7)
    assert page["meta"] == {
        "totalItems": 300,
        "itemCount": 7,
        "itemsPerPage": 7,
        "totalPages": 43,
        "currentPage": 2,
    }
    listed = [p["createdAt"] for p in world.payments_page(1, 100)["items"]]
    assert listed == sorted(listed, reverse=True)
    assert world.payments_page(1, 500)["meta"]["itemsPerPage"] == 100
    beyond = world.refunds_page(99, 20)
    assert beyond["items"] == [] and beyond["meta"]["currentPage"] == 99
    with pytest.raises(SandboxError):
        world.payments_page(0, 20)


def fresh() -> World:
    return World(EbioroSandboxConfig(seed=5, payments=40, mismatch_rate=0, dust_rate=0))


def some(world: World, status: str) -> str:
    return next(p["id"] for p in world.truth()["payments"] if p["status"] == status)


def test_admin_changes_plant_each_refund_rule() -> None:
    world = fresh()
    found = set()
    for plant in ("exceeds", "no-settlement-id", "asset"):
        payment_id = world.add_payments(1, "open")[0]
        world.pay(payment_id)
        refund = world.refund_payment(payment_id, mismatch=plant)
        found |= {
            rule for rule, subject in world.expected_mismatches() if subject == refund["refund_id"]
        }
    assert found == {
        oracle.RULE_REFUND_EXCEEDS,
        oracle.RULE_REFUND_SETTLEMENT,
        oracle.RULE_REFUND_ASSET,
    }


def test_partial_refunds_then_a_second_that_tips_the_total() -> None:
    world = fresh()
    payment_id = world.add_payments(1, "open")[0]
    paid = world.pay(payment_id)["amount_paid"]
    first = world.refund_payment(payment_id, value=paid // 2)
    assert first["payment"]["status"] == "paid"  # a partial refund leaves the payment paid
    second = world.refund_payment(payment_id, mismatch="total")
    assert paid // 2 < second["amount"]["value"] <= paid
    assert world.expected_mismatches() == {(oracle.RULE_REFUNDS_TOTAL, payment_id)}
    assert world.payment(payment_id)["status"] == "refunded"


def test_pay_settle_refund_follow_the_documented_flow() -> None:
    world = fresh()
    payment_id = world.add_payments(1, "open")[0]
    short = world.pay(payment_id, amount_paid=100)
    assert (short["status"], short["amount_remaining"]) == (
        "underpaid",
        short["settlement_amount"] - 100,
    )
    with pytest.raises(Conflict):
        world.pay(payment_id)
    paid_id = world.add_payments(1, "open")[0]
    assert world.pay(paid_id)["stellarTxId"]
    assert world.settle(paid_id, "processing")["settlement_status"] == "processing"
    assert world.settle(paid_id)["settlement_stellarTxId"]
    pending = world.refund_payment(paid_id, value=10, status="processing")
    with pytest.raises(Conflict):  # one refund in progress at a time
        world.refund_payment(paid_id)
    done = world.update_refund(pending["refund_id"], {"status": "refunded"})
    assert re.fullmatch("[0-9a-f]{64}", done["settlement_Id"])
    assert done["payment"]["status"] == "paid" and world.expected_mismatches() == set()
    assert world.refund_payment(paid_id)["payment"]["status"] == "refunded"
    with pytest.raises(UnknownObject):
        world.payment("pt_nope")


def test_silent_payment_corrections_show_in_the_truth() -> None:
    world = fresh()
    payment_id = world.add_payments(1, "paid")[0]
    world.update_payment(payment_id, {"status": "refunded", "refunded": True})
    world.update_payment(payment_id, {"amount_received": Decimal("0.5")})
    assert world.expected_mismatches() == {
        (oracle.RULE_REFUNDED_WITHOUT_REFUND, payment_id),
        (oracle.RULE_AMOUNTS, payment_id),
    }
    with pytest.raises(SandboxError):
        world.update_payment(payment_id, {"amount_paid": "12"})  # amounts are JSON numbers


def test_webhook_body_has_the_fields_of_the_doc_example(world: World, ebioro_fixture: Load) -> None:
    example = ebioro_fixture("webhook-transaction-updated.json")
    payment = world.payment(some(world, "paid"))
    body = jsonx.loads(webhook_body("transaction_updated", payment))
    assert list(body) == ["data"] and list(body["data"]) == list(example["data"])
    assert {k: json_type(v) for k, v in body["data"].items()} == {
        k: json_type(v) for k, v in example["data"].items()
    }
    raw = webhook_body("transaction_updated", payment)
    assert raw == jsonx.dumps(jsonx.loads(raw)).encode()  # compact, as JSON.stringify writes it


# --- digest auth, verified with the doc's vectors


def test_the_doc_vectors_are_what_the_sandbox_checks() -> None:
    for path, method, body, expected in VECTORS:
        assert sign_request(SECRET, path, TIMESTAMP, method, body) == expected
    webhook = b'{"data":{"type":"transaction_updated","id":"pt_ABC123","status":"paid",'
    webhook += b'"settlement_status":"paid"}}'
    assert sign_webhook(SECRET, webhook) == (
        "0885e745878717ca2d074ab3ad02a5496f0d816845906e24a0daa0e29424ddbd"
    )


def check(
    signature: str,
    path: str = "/payments",
    method: str = "GET",
    body: bytes = b"",
    key: str = "pk_test_example",
    skew: timedelta = timedelta(0),
) -> str | None:
    headers = {
        "x-digest-key": key,
        "x-digest-timestamp": TIMESTAMP,
        "x-digest-signature": signature,
    }
    credentials = EbioroCredentials("pk_test_example", SECRET)
    now = datetime.fromtimestamp(int(TIMESTAMP), UTC) + skew
    return refusal(credentials, 300, method, path, headers, body, now)


@pytest.mark.parametrize(("path", "method", "body", "signature"), VECTORS)
def test_vectors_are_accepted(path: str, method: str, body: bytes, signature: str) -> None:
    assert check(signature, path, method, body) is None
    assert check(signature.upper(), path, method, body) is None  # hex is case-insensitive


def test_a_pretty_printed_body_is_checked_as_the_server_re_serialises_it() -> None:
    path, method, body, signature = VECTORS[2]
    pretty = jsonx.dumps(jsonx.loads(body)).replace(",", ", ").encode()
    assert check(signature, path, method, pretty) is None


def test_refusals_name_the_documented_cause() -> None:
    good = VECTORS[1][3]
    assert check(good, "/payments?page=2&limit=5") == "Signature verification failed"
    assert check(good, "/payments") == "Signature verification failed"  # query is signed
    assert check(VECTORS[0][3], method="POST") == "Signature verification failed"
    assert check(VECTORS[0][3], key="pk_test_other") == "Invalid public key"
    assert check(VECTORS[0][3], skew=timedelta(seconds=301)) == "Request timed out"
    assert check(VECTORS[0][3], skew=timedelta(seconds=-301)) == "Request timed out"
    assert check(VECTORS[0][3], skew=timedelta(seconds=300)) is None
    assert check("") == "Missing header values"
