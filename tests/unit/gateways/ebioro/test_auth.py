"""Ebioro digest signing and webhook verification: the doc's vectors (docs/gateways/ebioro.md
(E-SIGN-7)),
worked out from the recipe step by step, and the auth applied to real ``httpx`` requests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from ledger import jsonx
from worker.gateways.ebioro.auth import (
    DigestAuth,
    compact_body,
    digest_headers,
    is_fresh,
    sign_request,
    sign_webhook,
    string_to_sign,
    unix_timestamp,
    verify_webhook,
    webhook_payment_id,
)

SECRET = "sk_test_example_secret"
PUBLIC = "pk_test_example_public"
TIMESTAMP = "1714067192"
MOMENT = datetime.fromtimestamp(1714067192, UTC)
WEBHOOK = (
    b'{"data":{"type":"transaction_updated","id":"pt_ABC123","status":"paid",'
    b'"settlement_status":"paid"}}'
)
WEBHOOK_SIGNATURE = "0885e745878717ca2d074ab3ad02a5496f0d816845906e24a0daa0e29424ddbd"


def by_hand(secret: str, message: str) -> str:
    """The recipe itself: lowercase hex of HMAC-SHA256(key=secret, msg=message), both UTF-8."""
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def test_get_without_query() -> None:
    # path "/payments" + timestamp "1714067192" + "GET" + body "" (GET has an empty body)
    message = "/payments1714067192GET"
    expected = "947770dc582388d247f01409c5b4b5211ead4df987aaf28a7dbc914d34202977"

    assert string_to_sign("/payments", TIMESTAMP, "get") == message.encode()
    assert by_hand(SECRET, message) == expected
    assert sign_request(SECRET, "/payments", TIMESTAMP, "GET") == expected


def test_get_with_query_signs_the_query_too() -> None:
    # the query string is part of the signed path, exactly as sent: "?page=2&limit=50"
    message = "/payments?page=2&limit=501714067192GET"
    expected = "b11d6a07245efea6139ecf8f3cb477ca5be4cb2c0e8df9d896b8127fbc9ff939"

    assert by_hand(SECRET, message) == expected
    assert sign_request(SECRET, "/payments?page=2&limit=50", TIMESTAMP, "GET") == expected


def test_post_payment_signs_the_compact_body() -> None:
    request = {
        "amount": {"value": 1000, "currency": "USD"},
        "description": "Order #1234",
        "redirectUrl": "https://example.com/ok",
    }
    body = compact_body(request)
    # JSON.stringify: no spaces, key order kept, "/" not escaped
    assert body == (
        b'{"amount":{"value":1000,"currency":"USD"},"description":"Order #1234",'
        b'"redirectUrl":"https://example.com/ok"}'
    )
    message = "/payments1714067192POST" + body.decode()
    expected = "a6e40e2a6c055e179c6ab8dbc19a9b63f4712b621e8e1c4e6678c1ab96a3f0d3"

    assert by_hand(SECRET, message) == expected
    assert sign_request(SECRET, "/payments", TIMESTAMP, "POST", body) == expected


def test_post_refund_signs_the_compact_body() -> None:
    asset = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
    body = compact_body({"amount": {"value": 500, "asset_id": asset}, "description": "Refund"})
    message = "/payments/pt_ABC123/refunds1714067192POST" + body.decode()
    expected = "5413afda4acbe3ff27b288f3f87125d40d926c0c04b1662b3dfd17fe4ed1260b"

    assert by_hand(SECRET, message) == expected
    path = "/payments/pt_ABC123/refunds"
    assert sign_request(SECRET, path, TIMESTAMP, "POST", body) == expected


def test_webhook_vector_signs_the_body_alone() -> None:
    assert by_hand(SECRET, WEBHOOK.decode()) == WEBHOOK_SIGNATURE
    assert sign_webhook(SECRET, WEBHOOK) == WEBHOOK_SIGNATURE
    assert sign_webhook(SecretStr(SECRET), WEBHOOK) == WEBHOOK_SIGNATURE


def test_timestamp_is_whole_unix_seconds() -> None:
    assert unix_timestamp(datetime(2024, 4, 25, 17, 46, 32, 999_999, tzinfo=UTC)) == TIMESTAMP
    headers = digest_headers(PUBLIC, SECRET, "GET", "/payments", now=MOMENT)
    assert headers == {
        "X-Digest-Key": PUBLIC,
        "X-Digest-Timestamp": TIMESTAMP,
        "X-Digest-Signature": "947770dc582388d247f01409c5b4b5211ead4df987aaf28a7dbc914d34202977",
    }


@pytest.mark.parametrize(
    ("stamp", "fresh"),
    [(TIMESTAMP, True), ("1714067492", True), ("1714066892", True), ("1714067493", False),
     ("1714066891", False), ("", False), ("-5", False), ("17140.67", False)],
)  # fmt: skip
def test_freshness_window_is_five_minutes_either_way(stamp: str, fresh: bool) -> None:
    assert is_fresh(stamp, MOMENT) is fresh


# --- the auth on real httpx requests


def sent(request: httpx.Request) -> httpx.Request:
    """Run the request through DigestAuth as httpx would and return what goes on the wire."""
    auth = DigestAuth(PUBLIC, SecretStr(SECRET), clock=lambda: MOMENT)
    flow = auth.sync_auth_flow(request)
    return next(flow)


def test_digest_auth_signs_the_raw_path_and_query() -> None:
    request = sent(
        httpx.Request("GET", "https://test-merchant.ebioro.com/payments?page=2&limit=50")
    )

    assert request.headers["X-Digest-Key"] == PUBLIC
    assert request.headers["X-Digest-Timestamp"] == TIMESTAMP
    assert request.headers["X-Digest-Signature"] == (
        "b11d6a07245efea6139ecf8f3cb477ca5be4cb2c0e8df9d896b8127fbc9ff939"
    )


def test_digest_auth_signs_the_bytes_it_sends() -> None:
    body = compact_body({"amount": {"value": 1000, "currency": "USD"}, "description": "Ünïcode/x"})
    request = sent(httpx.Request("POST", "https://h.test/payments", content=body))

    assert request.content == body
    assert b"\\/" not in body and "Ünïcode".encode() in body  # JSON.stringify leaves both alone
    expected = by_hand(SECRET, "/payments" + TIMESTAMP + "POST" + body.decode())
    assert request.headers["X-Digest-Signature"] == expected


def test_escaped_ids_are_signed_as_sent() -> None:
    request = sent(httpx.Request("GET", "https://h.test/payments/a%2Fb"))
    assert request.url.raw_path == b"/payments/a%2Fb"
    assert request.headers["X-Digest-Signature"] == by_hand(SECRET, "/payments/a%2Fb1714067192GET")


def test_digest_auth_repr_hides_the_secret() -> None:
    auth = DigestAuth(PUBLIC, SecretStr(SECRET))
    assert SECRET not in repr(auth) and SECRET not in str(auth)
    assert "***" in repr(auth)


# --- webhooks


def test_verify_webhook_accepts_the_doc_vector() -> None:
    assert verify_webhook(SECRET, WEBHOOK, WEBHOOK_SIGNATURE)
    assert verify_webhook(SecretStr(SECRET), WEBHOOK, WEBHOOK_SIGNATURE.upper())  # hex is hex
    assert verify_webhook(SECRET, WEBHOOK, f" {WEBHOOK_SIGNATURE}\n")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        (SECRET, WEBHOOK, None),
        (SECRET, WEBHOOK, ""),
        (SECRET, WEBHOOK, "0" * 64),
        (SECRET, WEBHOOK, WEBHOOK_SIGNATURE[:-1]),
        ("sk_test_other", WEBHOOK, WEBHOOK_SIGNATURE),
        ("", WEBHOOK, WEBHOOK_SIGNATURE),
        (SECRET, WEBHOOK.replace(b"paid", b"PAID", 1), WEBHOOK_SIGNATURE),
        # the same JSON pretty-printed is other bytes: the raw body is what is signed
        (SECRET, jsonx.dumps(jsonx.loads(WEBHOOK)).replace(",", ", ").encode(), WEBHOOK_SIGNATURE),
        (SECRET, WEBHOOK, "ünïcode"),
    ],
)
def test_verify_webhook_refuses_everything_else(
    secret: str, body: bytes, header: str | None
) -> None:
    assert verify_webhook(secret, body, header) is False


@pytest.mark.parametrize(
    ("body", "payment_id"),
    [
        (WEBHOOK, "pt_ABC123"),
        (b'{"data":{"id":"pt_x"},"id":"pt_other"}', "pt_x"),
        (b'{"data":{"id":""}}', None),
        (b'{"data":{"id":42}}', None),
        (b'{"data":[]}', None),
        (b'{"id":"pt_x"}', None),
        (b"[]", None),
        (b'{"data":{"id":"pt_x"', None),
        (b"", None),
        (('{"data":{"id":"' + "x" * 201 + '"}}').encode(), None),
    ],
)
def test_webhook_payment_id_reads_only_data_id(body: bytes, payment_id: str | None) -> None:
    assert webhook_payment_id(body) == payment_id
