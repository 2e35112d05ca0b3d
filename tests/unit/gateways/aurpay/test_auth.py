"""Aurpay request signing: the doc's vectors (docs/gateways/aurpay.md (A-SIGN-6)), worked out step
by step."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from worker.gateways.aurpay.auth import (
    ApiKeyAuth,
    SignatureAuth,
    body_md5,
    iso_now,
    request_origin,
    sign_callback,
    sign_request,
    signature_headers,
    signing_path,
)

SECRET = "example_api_secret"
DATE = "2025-01-01T12:34:56.789Z"
MOMENT = datetime(2025, 1, 1, 12, 34, 56, 789000, tzinfo=UTC)


def by_hand(secret: str, origin: str) -> str:
    """The recipe itself: Base64(HMAC-SHA256(key=secret, msg=origin)), both UTF-8."""
    digest = hmac.new(secret.encode(), origin.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_get_orders_with_query_signed() -> None:
    path = "/api/v2/order/?page=1&size=10"
    origin = "HMAC-SHA256 | 2025-01-01T12:34:56.789Z | GET /api/v2/order/?page=1&size=10"
    expected = "iRQYjvNe1ZK9pps7p+v3gNahGl35VFTJWErH4EHrQv8="

    assert request_origin(DATE, "GET", signing_path(path, sign_query=True), None) == origin
    assert by_hand(SECRET, origin) == expected
    assert sign_request(SECRET, DATE, "GET", signing_path(path, sign_query=True)) == expected


def test_get_orders_without_query_signed() -> None:
    path = "/api/v2/order/?page=1&size=10"
    origin = "HMAC-SHA256 | 2025-01-01T12:34:56.789Z | GET /api/v2/order/"
    expected = "WyAj+dhPL3zIR5dw1L8i9iKQgR9mjBQT/KgtF3eB5Ek="

    assert signing_path(path, sign_query=False) == "/api/v2/order/"
    assert request_origin(DATE, "GET", "/api/v2/order/", None) == origin
    assert by_hand(SECRET, origin) == expected
    assert sign_request(SECRET, DATE, "GET", signing_path(path, sign_query=False)) == expected


def test_get_refund_info() -> None:
    path = "/api/v2/order/refund-info/20240614061316661529"
    origin = f"HMAC-SHA256 | 2025-01-01T12:34:56.789Z | GET {path}"
    expected = "I9DO28RFl8/iqtvVDYtgY7WzZ0AwXQsw3JI221ebQBg="

    assert request_origin(DATE, "GET", path, None) == origin
    assert by_hand(SECRET, origin) == expected
    assert sign_request(SECRET, DATE, "GET", path) == expected


def test_post_with_body_adds_body_md5_segment() -> None:
    body = b'{"chain":"ETH","currency":"USDT-ERC20","vs_currency":"USD","vs_price":18}'
    md5 = "c627b2247c1771648023dcbf3f17f0b1"  # lowercase hex MD5 of exactly those bytes
    origin = (
        "HMAC-SHA256 | 2025-01-01T12:34:56.789Z | POST /api/order/pay-info"
        " | c627b2247c1771648023dcbf3f17f0b1"
    )
    expected = "0EFxJkwOBghbHwPwkG1G2l9YQL0ZaYf/q6/WqE2FeC0="

    assert hashlib.md5(body).hexdigest() == md5 == body_md5(body)
    assert request_origin(DATE, "post", "/api/order/pay-info", md5) == origin  # METHOD upper-cased
    assert by_hand(SECRET, origin) == expected
    assert sign_request(SECRET, DATE, "POST", "/api/order/pay-info", body) == expected

    headers = signature_headers("tok", SECRET, "POST", "/api/order/pay-info", body, True, MOMENT)
    assert headers == {
        "API-Token": "tok",
        "Algorithm": "HMAC-SHA256",
        "Date": DATE,
        "Body-MD5": md5,
        "Signature": expected,
    }


def test_no_body_means_no_body_md5_header_and_three_segments() -> None:
    headers = signature_headers("tok", SECRET, "GET", "/api/v2/tx?page=1&size=5", b"", True, MOMENT)

    assert "Body-MD5" not in headers
    origin = request_origin(headers["Date"], "GET", "/api/v2/tx?page=1&size=5", None)
    assert origin.split(" | ") == ["HMAC-SHA256", DATE, "GET /api/v2/tx?page=1&size=5"]
    assert headers["Signature"] == by_hand(SECRET, origin)


def test_callback_vector() -> None:
    origin = "2024-06-17T00:00:00Z | https://api.you.com/callback?id=32"
    expected = "ZEnMRaXdv0MfpsSxIP4Lz3a16ZO1O4omBW72j2nEhpY="

    assert by_hand("example_callback_secret", origin) == expected
    assert (
        sign_callback(
            "example_callback_secret", "2024-06-17T00:00:00Z", "https://api.you.com/callback?id=32"
        )
        == expected
    )


def test_date_is_iso_utc_with_milliseconds_and_z() -> None:
    assert iso_now(MOMENT) == DATE
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", iso_now())


def test_signature_auth_signs_the_request_target_httpx_sends() -> None:
    auth = SignatureAuth(SecretStr("tok"), SecretStr(SECRET), clock=lambda: MOMENT)
    request = httpx.Request(
        "GET", "https://dashboard.aurpay.net/api/v2/order/", params={"page": 1, "size": 10}
    )

    signed = next(auth.auth_flow(request))

    assert signed.url.raw_path == b"/api/v2/order/?page=1&size=10"
    assert signed.headers["API-Token"] == "tok"
    assert signed.headers["Algorithm"] == "HMAC-SHA256"
    assert signed.headers["Date"] == DATE
    assert "Body-MD5" not in signed.headers
    assert signed.headers["Signature"] == "iRQYjvNe1ZK9pps7p+v3gNahGl35VFTJWErH4EHrQv8="


def test_signature_auth_without_query_and_with_body() -> None:
    unsigned_query = SignatureAuth(
        SecretStr("tok"), SecretStr(SECRET), sign_query=False, clock=lambda: MOMENT
    )
    get = httpx.Request("GET", "https://x.test/api/v2/order/?page=1&size=10")
    assert (
        next(unsigned_query.auth_flow(get)).headers["Signature"]
        == "WyAj+dhPL3zIR5dw1L8i9iKQgR9mjBQT/KgtF3eB5Ek="
    )

    body = b'{"chain":"ETH","currency":"USDT-ERC20","vs_currency":"USD","vs_price":18}'
    auth = SignatureAuth(SecretStr("tok"), SecretStr(SECRET), clock=lambda: MOMENT)
    post = next(
        auth.auth_flow(httpx.Request("POST", "https://x.test/api/order/pay-info", content=body))
    )
    assert post.headers["Body-MD5"] == "c627b2247c1771648023dcbf3f17f0b1"
    assert post.headers["Signature"] == "0EFxJkwOBghbHwPwkG1G2l9YQL0ZaYf/q6/WqE2FeC0="


def test_api_key_auth_sets_the_header() -> None:
    request = next(
        ApiKeyAuth(SecretStr("k-123456")).auth_flow(httpx.Request("GET", "https://x.test/"))
    )
    assert request.headers["API-Key"] == "k-123456"
    assert "Signature" not in request.headers


def test_auth_reprs_hide_credentials() -> None:
    for auth in (
        ApiKeyAuth(SecretStr("the-api-key")),
        SignatureAuth(SecretStr("the-api-token"), SecretStr("the-api-secret")),
    ):
        text = repr(auth) + str(auth)
        assert "the-api" not in text
