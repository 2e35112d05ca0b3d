"""The Ebioro client over ``httpx.MockTransport``: signed requests, errors, retries, paging."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from ledger import jsonx
from tests.helpers.fakes import failing, raising
from worker.config import load_settings
from worker.errors import (
    AuthError,
    BadResponse,
    ConfigError,
    NotFound,
    PermanentError,
    ProviderError,
    RateLimited,
    Rejected,
    TransientError,
    Unavailable,
)
from worker.gateways.ebioro import GATEWAY
from worker.gateways.ebioro.auth import DigestAuth, sign_request
from worker.gateways.ebioro.client import EbioroClient
from worker.gateways.ebioro.paging import PAYMENTS, REFUNDS
from worker.gateways.ebioro.payloads import InvalidRecord
from worker.logging import configure_logging

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PUBLIC, SECRET = "pk_test_4c7e2a9f1d", "sk_test_8d1f3a5e9b0c"
BASE = "https://test-merchant.ebioro.com"


def body(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=jsonx.dumps(data).encode())


def payment(payment_id: str, status: str = "paid", **fields: Any) -> dict[str, Any]:
    base = {"id": payment_id, "status": status, "amount": {"value": 1000, "currency": "USD"}}
    return {**base, **fields}


def refund(refund_id: str, payment_id: str = "pt_1") -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "status": "refunded",
        "amount": {"asset_id": "USDC:GA5Z", "value": 500},
        "payment": payment(payment_id),
    }


def make_client(
    handler: Handler,
    *,
    retries: int = 0,
    sleeps: list[float] | None = None,
    **kwargs: Any,
) -> tuple[EbioroClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.Client(transport=httpx.MockTransport(record), base_url=BASE)
    client = EbioroClient(
        http,
        auth=DigestAuth(PUBLIC, SecretStr(SECRET), clock=lambda: NOW),
        retries=retries,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
        clock=lambda: NOW,
        jitter=lambda: 0.0,
        **kwargs,
    )
    return client, seen


def query(request: httpx.Request) -> tuple[int, int]:
    parsed = parse_qs(request.url.query.decode())
    return int(parsed["page"][0]), int(parsed["limit"][0])


def paged(pages: dict[int, list[dict[str, Any]]], total_pages: int, limit: int) -> Handler:
    """Serve ``{page: items}`` with a ``meta`` block; a page not listed is empty."""

    def handler(request: httpx.Request) -> httpx.Response:
        number, _ = query(request)
        items = pages.get(number, [])
        meta = {
            "totalItems": sum(map(len, pages.values())),
            "itemCount": len(items),
            "itemsPerPage": limit,
            "totalPages": total_pages,
            "currentPage": number,
        }
        return body({"items": items, "meta": meta})

    return handler


# --- signing on the wire


def test_requests_carry_digest_headers_over_the_exact_target() -> None:
    client, seen = make_client(paged({2: [payment("pt_1")]}, 2, 50))
    client.fetch_page(PAYMENTS, 2, size=50)

    [request] = seen
    target = request.url.raw_path.decode()
    assert target == "/payments?page=2&limit=50"  # the doc's vector shape: page, then limit
    timestamp = request.headers["X-Digest-Timestamp"]
    assert timestamp == str(int(NOW.timestamp()))
    assert request.headers["X-Digest-Key"] == PUBLIC
    assert request.headers["X-Digest-Signature"] == sign_request(SECRET, target, timestamp, "GET")
    assert request.content == b""


def test_ids_are_escaped_into_one_signed_path_segment() -> None:
    client, seen = make_client(lambda r: body(payment("a/b?c")))
    client.payment("a/b?c")
    assert seen[0].url.raw_path == b"/payments/a%2Fb%3Fc"
    stamp = seen[0].headers["X-Digest-Timestamp"]
    expected = sign_request(SECRET, "/payments/a%2Fb%3Fc", stamp, "GET")
    assert seen[0].headers["X-Digest-Signature"] == expected


def test_from_settings_builds_base_url_timeout_and_headers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return body(payment("pt_1"))

    settings = GATEWAY.load_settings(
        "ebioro_", public_key=PUBLIC, secret_key=SECRET, base_url=f"{BASE}/", timeout_seconds=3
    )
    with EbioroClient.from_settings(settings, transport=httpx.MockTransport(answer)) as client:
        client.payment("pt_1")

    [request] = seen
    assert str(request.url) == f"{BASE}/payments/pt_1"
    assert request.extensions["timeout"] == {"connect": 3, "read": 3, "write": 3, "pool": 3}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Digest-Key"] == PUBLIC


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"ebioro_public_key": PUBLIC}, "EBIORO_SECRET_KEY"),
        ({"ebioro_secret_key": SECRET}, "EBIORO_SECRET_KEY"),
        ({"ebioro_public_key": PUBLIC, "ebioro_secret_key": SECRET}, "EBIORO_BASE_URL"),
        ({"ebioro_base_url": f"{BASE}/api/v1"}, "EBIORO_BASE_URL"),
        ({"ebioro_base_url": "merchant-api.ebioro.com"}, "EBIORO_BASE_URL"),
        ({"ebioro_page_size": 101}, "EBIORO_PAGE_SIZE"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_variable(
    settings: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**settings)
    message = str(caught.value)
    assert message.startswith(f"invalid setting {variable}:") and "\n" not in message
    assert SECRET not in message


def test_a_missing_base_url_lists_the_hosts_and_keys_alone_enable_nothing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(ebioro_public_key=PUBLIC, ebioro_secret_key=SECRET)
    assert "https://test-merchant.ebioro.com" in str(caught.value)
    assert "https://merchant-api.ebioro.com" in str(caught.value)
    assert "ebioro" not in load_settings().sources
    assert "ebioro" not in load_settings(ebioro_base_url=BASE).sources
    enabled = load_settings(
        ebioro_public_key=PUBLIC, ebioro_secret_key=SECRET, ebioro_base_url=BASE
    )
    assert "ebioro" in enabled.sources and SECRET in enabled.secret_values()
    assert SECRET not in repr(enabled)


# --- status and body mapping


def failure(status: int, reason: str | None = None, **headers: str) -> Handler:
    content = {"reason": reason, "statusCode": status} if reason else {}
    return lambda r: httpx.Response(status, content=jsonx.dumps(content).encode(), headers=headers)


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (failure(429, "rate limit exceeded", **{"Retry-After": "7"}), RateLimited),
        (failure(500, "Internal error"), Unavailable),
        (lambda r: httpx.Response(503, text="<html>busy</html>"), Unavailable),
        (raising(httpx.ReadTimeout("timed out")), Unavailable),
        (raising(httpx.ConnectError("refused")), Unavailable),
        (lambda r: httpx.Response(200, content=b'{"items":[{"id"'), BadResponse),
        (lambda r: httpx.Response(200, text="<html>proxy</html>"), BadResponse),
        (lambda r: body(["not", "a", "page"]), BadResponse),
        (lambda r: body({"items": []}), BadResponse),  # no meta
        (failure(401, "Signature verification failed"), AuthError),
        (failure(404, "Not found"), NotFound),
        (failure(400, "Invalid params"), Rejected),
    ],
)  # fmt: skip
def test_classification(handler: Handler, error: type[ProviderError]) -> None:
    client, _ = make_client(handler)
    with pytest.raises(error) as caught:
        next(client.iter_pages(PAYMENTS))
    assert caught.value.retryable is issubclass(error, TransientError)
    assert caught.value.source == "ebioro"


def test_errors_keep_status_code_and_reason() -> None:
    client, _ = make_client(failure(401, "Signature verification failed"))
    with pytest.raises(AuthError) as caught:
        client.refund("rf_1")
    exc = caught.value
    assert (exc.status, exc.code, exc.provider_message) == (
        401,
        401,
        "Signature verification failed",
    )
    assert str(exc) == "ebioro GET /refunds/rf_1: HTTP 401: Signature verification failed"


def test_rate_limit_retry_after_seconds_and_http_date() -> None:
    client, _ = make_client(failure(429, "slow down", **{"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        client.payment("pt_1")
    assert caught.value.retry_after == 7

    date = "Wed, 01 Jan 2025 12:00:42 GMT"  # NOW + 42 s
    client, _ = make_client(failure(429, "slow down", **{"Retry-After": date}))
    with pytest.raises(RateLimited) as caught:
        client.payment("pt_1")
    assert caught.value.retry_after == 42


def test_transient_errors_are_retried_with_backoff_then_succeed() -> None:
    sleeps: list[float] = []
    handler = failing(2, failure(502, "bad gateway"), lambda r: body(payment("pt_1")))
    client, seen = make_client(handler, retries=3, sleeps=sleeps)

    assert client.payment("pt_1").payment_id == "pt_1"
    assert len(seen) == 3 and sleeps == [0.25, 0.5]
    # every attempt is signed afresh
    assert all("X-Digest-Signature" in r.headers for r in seen)


def test_retry_after_is_honoured_and_a_long_one_left_to_the_caller() -> None:
    sleeps: list[float] = []
    handler = failing(1, failure(429, "x", **{"Retry-After": "3"}), lambda r: body(payment("p")))
    client, seen = make_client(handler, retries=3, sleeps=sleeps)
    client.payment("p")
    assert sleeps == [3] and len(seen) == 2

    sleeps.clear()
    client, seen = make_client(
        failure(429, "x", **{"Retry-After": "120"}), retries=3, sleeps=sleeps
    )
    with pytest.raises(RateLimited):
        client.payment("p")
    assert sleeps == [] and len(seen) == 1


@pytest.mark.parametrize("status", [400, 401, 404])
def test_permanent_errors_are_not_retried(status: int) -> None:
    sleeps: list[float] = []
    client, seen = make_client(failure(status, "no"), retries=3, sleeps=sleeps)
    with pytest.raises(PermanentError):
        client.payment("pt_1")
    assert len(seen) == 1 and sleeps == []


# --- paging


def test_paging_stops_at_total_pages() -> None:
    pages = {n: [payment(f"pt_{n}a"), payment(f"pt_{n}b")] for n in (1, 2, 3)}
    client, seen = make_client(paged(pages, 3, 2), page_size=2)

    read = list(client.iter_pages(PAYMENTS))

    assert [p.number for p in read] == [1, 2, 3]
    assert [r.payment_id for p in read for r in p.records][-1] == "pt_3b"
    assert [query(r) for r in seen] == [(1, 2), (2, 2), (3, 2)]
    assert all(r.url.path == "/payments" for r in seen)


def test_paging_stops_at_a_short_or_empty_page() -> None:
    client, seen = make_client(paged({1: [payment("a"), payment("b")], 2: [payment("c")]}, 9, 2))
    assert [p.number for p in client.iter_pages(PAYMENTS, size=2)] == [1, 2]
    assert len(seen) == 2

    client, seen = make_client(paged({1: [payment("a")]}, 9, 1))
    assert [p.number for p in client.iter_pages(PAYMENTS, size=1)] == [1, 2]  # 2 is empty
    assert len(seen) == 2


def test_the_limit_never_exceeds_the_documented_maximum() -> None:
    client, seen = make_client(paged({}, 0, 100))
    client.fetch_page(PAYMENTS, 1, size=500)
    assert query(seen[0]) == (1, 100)
    with pytest.raises(ValueError, match="page_size"):
        make_client(paged({}, 0, 100), page_size=101)


def test_refund_feed_and_rejected_items() -> None:
    items = [refund("rf_1"), {"refund_id": "rf_bad", "status": "refunded"}]
    client, seen = make_client(paged({1: items}, 1, 100))

    [page] = list(client.iter_pages(REFUNDS))

    assert seen[0].url.path == "/refunds"
    assert [r.refund_id for r in page.records] == ["rf_1"]
    assert page.records[0].amount == Decimal(500)
    assert [(r.external_id, r.reason) for r in page.rejected] == [("rf_bad", "amount: missing")]


def test_concurrent_pages_come_back_in_order() -> None:
    pages = {n: [payment(f"pt_{n}")] for n in range(1, 6)}
    client, _ = make_client(paged(pages, 5, 1))
    got = list(client.fetch_pages(PAYMENTS, range(1, 6), size=1, max_workers=3))
    assert [p.records[0].payment_id for p in got] == [f"pt_{n}" for n in range(1, 6)]


# --- single objects


def test_payment_and_refund_by_id(ebioro_fixture: Callable[[str], Any]) -> None:
    doc = ebioro_fixture("refund.json")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/refunds/"):
            return body(doc)
        return body(doc["payment"])

    client, seen = make_client(handler)
    assert client.refund("rf_fpaBPVF1t_").payment_id == "pt_AEtKAcN9d-"
    assert client.payment("pt_AEtKAcN9d-").settlement_amount == Decimal(2663)
    assert [r.url.path for r in seen] == ["/refunds/rf_fpaBPVF1t_", "/payments/pt_AEtKAcN9d-"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(payment("pt_other"), "does not match"), (payment("pt_1", status="??"), "unknown status")],
)
def test_a_wrong_or_malformed_object_is_an_invalid_record(
    answer: dict[str, Any], reason: str
) -> None:
    client, _ = make_client(lambda r: body(answer))
    with pytest.raises(InvalidRecord, match=reason) as caught:
        client.payment("pt_1")
    assert caught.value.rejected.raw == answer


# --- secrets


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("debug", "json", secrets=[SECRET], stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()


def echoing(request: httpx.Request) -> httpx.Response:
    """A server that puts the signature and, worse, the secret into its error reason."""
    echoed = f"{request.headers['X-Digest-Signature']} {SECRET}"
    return body({"reason": f"bad signature {echoed}", "statusCode": 503}, 503)


def test_no_secret_in_logs_reprs_or_errors(log_stream: io.StringIO) -> None:
    client, _ = make_client(echoing, retries=2)

    with pytest.raises(Unavailable) as caught:
        client.payment("pt_1")
    structlog.get_logger("test").error("sync_failed", error=caught.value, exc_info=caught.value)

    output = log_stream.getvalue()
    assert "ebioro_call_retry" in output and "ebioro_call_failed" in output
    for text in (output, repr(client), str(client), str(caught.value), repr(caught.value)):
        assert SECRET not in text
    assert caught.value.provider_message is not None and "***" in caught.value.provider_message


def test_client_log_events_carry_no_credentials_even_unredacted() -> None:
    client, _ = make_client(echoing, retries=1)
    with capture_logs() as events, pytest.raises(Unavailable):
        client.payment("pt_1")
    assert [e["event"] for e in events] == [
        "ebioro_call",
        "ebioro_call_retry",
        "ebioro_call",
        "ebioro_call_failed",
    ]
    assert SECRET not in repr(events)
