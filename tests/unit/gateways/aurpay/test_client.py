"""The Aurpay client over ``httpx.MockTransport``: auth headers, error mapping, retries, paging."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from worker.gateways.aurpay import GATEWAY
from worker.gateways.aurpay.auth import ApiKeyAuth, SignatureAuth, sign_request
from worker.gateways.aurpay.client import AurpayClient
from worker.gateways.aurpay.paging import ORDERS, TRANSACTIONS
from worker.gateways.aurpay.payloads import InvalidRecord
from worker.gateways.aurpay.settings import AurpaySettings
from worker.logging import configure_logging

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TOKEN, SECRET, API_KEY = "tok-8d1f3a5e9b", "sec-4c7e2a9f1d", "key-0b6d8e2c4a"


def envelope(data: Any, status: int = 200, **overrides: Any) -> httpx.Response:
    body = {"code": 0, "message": "ok", "data": data, "result": True, **overrides}
    return httpx.Response(status, content=jsonx.dumps(body).encode())


def order(order_id: str, amount: str = "1.5", status: str = "SUCCESS") -> dict[str, Any]:
    return {"order_id": order_id, "status": status, "currency": "BTC", "amount": amount}


class Recorder:
    """A fake Aurpay: answers with ``handler`` and keeps every request it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        return self.handler(request)


def make_client(
    handler: Handler,
    *,
    auth: ApiKeyAuth | SignatureAuth | None = None,
    retries: int = 0,
    sleeps: list[float] | None = None,
    **kwargs: Any,
) -> tuple[AurpayClient, Recorder]:
    recorder = Recorder(handler)
    http = httpx.Client(transport=httpx.MockTransport(recorder), base_url="https://aurpay.test")
    client = AurpayClient(
        http,
        auth=auth or ApiKeyAuth(SecretStr(API_KEY)),
        retries=retries,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
        clock=lambda: NOW,
        jitter=lambda: 0.0,
        **kwargs,
    )
    return client, recorder


def account(**fields: Any) -> AurpaySettings:
    """The default account's settings, as the loader reads them (``AURPAY_<FIELD>``)."""
    return GATEWAY.load_settings("aurpay_", **fields)


def page_query(request: httpx.Request) -> tuple[int, int]:
    query = parse_qs(request.url.query.decode())
    return int(query["page"][0]), int(query["size"][0])


# --- auth


def test_signature_headers_verify_against_the_request_seen() -> None:
    client, seen = make_client(
        lambda r: envelope({"page": 2, "size": 10, "total": 0, "max_page": 0, "data": []}),
        auth=SignatureAuth(SecretStr(TOKEN), SecretStr(SECRET)),
    )
    next(client.fetch_pages(ORDERS, [2], size=10))

    [request] = seen.requests
    path = request.url.raw_path.decode()
    assert path == "/api/v2/order/?page=2&size=10"
    assert request.headers["API-Token"] == TOKEN
    assert request.headers["Algorithm"] == "HMAC-SHA256"
    assert "Body-MD5" not in request.headers and "API-Key" not in request.headers
    date = request.headers["Date"]
    assert request.headers["Signature"] == sign_request(SECRET, date, "GET", path)


def test_signature_without_query_signs_the_bare_path() -> None:
    client, seen = make_client(
        lambda r: envelope(order("X")),
        auth=SignatureAuth(SecretStr(TOKEN), SecretStr(SECRET), sign_query=False),
    )
    client.order_detail("X")

    request = seen.requests[0]
    assert request.headers["Signature"] == sign_request(
        SECRET, request.headers["Date"], "GET", "/api/v2/order/detail/X"
    )


def test_api_key_header() -> None:
    client, seen = make_client(lambda r: envelope(order("X")))
    client.order_detail("X")
    assert seen.requests[0].headers["API-Key"] == API_KEY
    assert "Signature" not in seen.requests[0].headers


def test_from_settings_chooses_the_method_and_builds_a_timeout() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return envelope(order("X"))

    both = account(
        api_key=API_KEY, api_token=TOKEN, api_secret=SECRET,
        base_url="https://aurpay.test", timeout_seconds=3,
    )  # fmt: skip
    with AurpayClient.from_settings(both, transport=httpx.MockTransport(answer)) as client:
        client.order_detail("X")
    with AurpayClient.from_settings(
        account(api_key=API_KEY), transport=httpx.MockTransport(answer)
    ) as client:
        client.order_detail("X")

    assert "Signature" in seen[0].headers and "API-Key" not in seen[0].headers
    assert seen[0].extensions["timeout"] == {"connect": 3, "read": 3, "write": 3, "pool": 3}
    assert seen[0].url.host == "aurpay.test"
    assert seen[1].headers["API-Key"] == API_KEY and "Signature" not in seen[1].headers
    with pytest.raises(ConfigError, match="AURPAY_API_KEY"):
        AurpayClient.from_settings(account(api_token=TOKEN))


def test_from_settings_reads_naive_times_in_the_configured_zone() -> None:
    raw = {**order("X"), "create_time": "2025-02-06T00:00:00"}
    settings = account(api_key=API_KEY, naive_timezone="Asia/Shanghai")
    transport = httpx.MockTransport(lambda r: envelope(raw))
    with AurpayClient.from_settings(settings, transport=transport) as client:
        assert client.order_detail("X").create_time == datetime(2025, 2, 5, 16, tzinfo=UTC)


# --- envelope and status mapping


def failure(status: int = 200, **body: Any) -> httpx.Response:
    return httpx.Response(status, content=jsonx.dumps(body).encode())


@pytest.mark.parametrize(
    ("response", "error", "code", "message"),
    [
        (failure(code=1001, message="order closed", result=False), Rejected, 1001, "order closed"),
        (failure(code=7, message="code not zero", result=True), Rejected, 7, "code not zero"),
        (failure(code=0, message="result false", result=False), Rejected, 0, "result false"),
        (failure(code=0, message="no result", data={}), Rejected, 0, "no result"),
        (failure(code=False, message="code false", result=True), Rejected, None, "code false"),
        (failure(500, code=500, message="internal", result=False), Unavailable, 500, "internal"),
    ],
)
def test_envelope_failures_keep_status_code_and_message(
    response: httpx.Response, error: type[ProviderError], code: int | None, message: str
) -> None:
    client, _ = make_client(lambda r: response)

    with pytest.raises(error) as caught:
        client.order_detail("X")

    exc = caught.value
    assert (exc.source, exc.status, exc.code, exc.provider_message) == (
        "aurpay",
        response.status_code,
        code,
        message,
    )
    assert message in str(exc) and "/api/v2/order/detail/X" in str(exc)


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (lambda r: httpx.Response(429, headers={"Retry-After": "7"}), RateLimited),
        (lambda r: httpx.Response(503, text="<html>busy</html>"), Unavailable),
        (raising(httpx.ReadTimeout("timed out")), Unavailable),
        (raising(httpx.ConnectError("refused")), Unavailable),
        (lambda r: httpx.Response(200, content=b'{"code":0,"message":"ok","data":{"'), BadResponse),
        (lambda r: httpx.Response(200, text="<html>proxy</html>"), BadResponse),
        (lambda r: httpx.Response(200, json=["not", "an", "envelope"]), BadResponse),
        (lambda r: httpx.Response(401, json={"code": 401, "message": "bad token"}), AuthError),
        (lambda r: httpx.Response(403), AuthError),
        (lambda r: httpx.Response(404), NotFound),
        (lambda r: httpx.Response(400, json={"code": 40, "message": "bad page"}), Rejected),
        (lambda r: httpx.Response(302, headers={"Location": "/login"}), Rejected),
    ],
)  # fmt: skip
def test_classification(handler: Handler, error: type[ProviderError]) -> None:
    client, _ = make_client(handler)
    with pytest.raises(error) as caught:
        next(client.iter_pages(ORDERS))
    assert caught.value.retryable is issubclass(error, TransientError)


def test_rate_limit_retry_after_seconds_and_http_date() -> None:
    client, _ = make_client(lambda r: httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        client.order_detail("X")
    assert caught.value.retry_after == 7

    http_date = "Wed, 01 Jan 2025 12:00:42 GMT"  # NOW + 42 s
    client, _ = make_client(lambda r: httpx.Response(429, headers={"Retry-After": http_date}))
    with pytest.raises(RateLimited) as caught:
        client.order_detail("X")
    assert caught.value.retry_after == 42


# --- retries


def test_transient_errors_are_retried_then_succeed() -> None:
    sleeps: list[float] = []
    handler = failing(2, lambda r: httpx.Response(503), lambda r: envelope(order("X")))
    client, seen = make_client(handler, retries=3, sleeps=sleeps)

    assert client.order_detail("X").order_id == "X"
    assert len(seen.requests) == 3
    assert sleeps == [0.25, 0.5]  # equal jitter with jitter() == 0: half of 0.5 s, 1 s


def test_transient_errors_stop_at_the_limit() -> None:
    sleeps: list[float] = []
    client, seen = make_client(lambda r: httpx.Response(503), retries=3, sleeps=sleeps)

    with pytest.raises(Unavailable):
        client.order_detail("X")
    assert len(seen.requests) == 4
    assert sleeps == [0.25, 0.5, 1.0]


def test_retry_after_is_honoured_between_attempts() -> None:
    sleeps: list[float] = []
    handler = failing(
        2,
        lambda r: httpx.Response(429, headers={"Retry-After": "7"}),
        lambda r: envelope(order("X")),
    )
    client, seen = make_client(handler, retries=3, sleeps=sleeps)

    client.order_detail("X")
    assert sleeps == [7, 7]
    assert len(seen.requests) == 3


def test_a_long_retry_after_is_left_to_the_caller() -> None:
    sleeps: list[float] = []
    client, seen = make_client(
        lambda r: httpx.Response(429, headers={"Retry-After": "120"}), retries=3, sleeps=sleeps
    )
    with pytest.raises(RateLimited) as caught:
        client.order_detail("X")
    assert caught.value.retry_after == 120
    assert len(seen.requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [400, 401, 404])
def test_permanent_errors_are_not_retried(status: int) -> None:
    sleeps: list[float] = []
    client, seen = make_client(lambda r: httpx.Response(status), retries=3, sleeps=sleeps)
    with pytest.raises(PermanentError):
        client.order_detail("X")
    assert len(seen.requests) == 1 and sleeps == []


def test_the_limiter_wraps_every_http_attempt() -> None:
    entered: list[int] = []

    class CountingLimiter:
        @contextmanager
        def slot(self) -> Iterator[None]:
            entered.append(1)
            yield

    handler = failing(1, lambda r: httpx.Response(502), lambda r: envelope(order("X")))
    client, seen = make_client(handler, retries=2, limiter=CountingLimiter())
    client.order_detail("X")
    assert len(entered) == len(seen.requests) == 2


# --- paging


def paged(pages: dict[int, tuple[int, list[dict[str, Any]]]]) -> Handler:
    """Serve ``{page: (max_page, items)}``; a page not listed is empty."""

    def handler(request: httpx.Request) -> httpx.Response:
        number, size = page_query(request)
        max_page, items = pages.get(number, (max(pages), []))
        data = {"page": number, "size": size, "total": max_page * size, "max_page": max_page}
        return envelope({**data, "data": items})

    return handler


def test_paging_stops_at_max_page() -> None:
    pages = {n: (3, [order(f"{n}-a"), order(f"{n}-b")]) for n in (1, 2, 3)}
    client, seen = make_client(paged(pages), page_size=2)

    read = list(client.iter_pages(ORDERS))

    assert [p.page for p in read] == [1, 2, 3]
    assert [o.order_id for p in read for o in p.records][-1] == "3-b"
    assert [page_query(r) for r in seen.requests] == [(1, 2), (2, 2), (3, 2)]
    assert all(r.url.path == "/api/v2/order/" for r in seen.requests)


def test_paging_stops_at_an_empty_page() -> None:
    client, seen = make_client(paged({1: (5, [order("a")]), 2: (5, [])}))
    assert [p.page for p in client.iter_pages(ORDERS, size=1)] == [1, 2]
    assert len(seen.requests) == 2


def test_paging_rereads_max_page_from_every_page() -> None:
    growing = {
        1: (3, [order("a")]),
        2: (4, [order("b")]),
        3: (4, [order("c")]),
        4: (4, [order("d")]),
    }
    client, _ = make_client(paged(growing))
    assert [p.page for p in client.iter_pages(ORDERS, size=1)] == [1, 2, 3, 4]

    shrinking = {1: (5, [order("a")]), 2: (2, [order("b")])}
    client, seen = make_client(paged(shrinking))
    assert [p.page for p in client.iter_pages(ORDERS, size=1)] == [1, 2]
    assert len(seen.requests) == 2


def test_paging_from_a_start_page_and_the_transaction_feed() -> None:
    tx = {"tx_id": "t1", "status": "SUCCESS", "tx_type": "ORDER", "currency": "BTC", "amount": "1"}
    client, seen = make_client(paged({3: (4, [tx]), 4: (4, [tx, {"tx_id": "bad"}])}))

    read = list(client.iter_pages(TRANSACTIONS, start=3, size=2))

    assert [p.page for p in read] == [3, 4]
    assert read[1].records[0].amount == Decimal(1)
    assert read[1].rejected[0].reason == "status: missing"
    assert all(r.url.path == "/api/v2/tx" for r in seen.requests)


def test_a_page_frame_out_of_shape_is_a_bad_response() -> None:
    client, _ = make_client(lambda r: envelope({"page": 1, "data": []}))
    with pytest.raises(BadResponse, match="page field size"):
        next(client.iter_pages(ORDERS))


def test_concurrent_range_yields_pages_in_order() -> None:
    page_three_done = threading.Event()
    served: list[int] = []
    base = paged({n: (6, [order(f"o{n}")]) for n in range(1, 7)})

    def handler(request: httpx.Request) -> httpx.Response:
        number, _ = page_query(request)
        if number == 1:  # hold page 1 back until a later page has been answered
            assert page_three_done.wait(timeout=10)
        response = base(request)
        served.append(number)
        if number == 3:
            page_three_done.set()
        return response

    client, _ = make_client(handler)
    pages = list(client.fetch_pages(ORDERS, range(1, 7), size=1, max_workers=3))

    assert [p.page for p in pages] == [1, 2, 3, 4, 5, 6]
    assert [p.records[0].order_id for p in pages] == [f"o{n}" for n in range(1, 7)]
    assert served.index(3) < served.index(1)  # they really completed out of order


def test_concurrent_range_raises_the_first_failure_in_order() -> None:
    base = paged({n: (3, [order(f"o{n}")]) for n in (1, 2, 3)})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400) if page_query(request)[0] == 2 else base(request)

    client, _ = make_client(handler)
    pages = client.fetch_pages(ORDERS, [1, 2, 3], max_workers=2)
    assert next(pages).page == 1
    with pytest.raises(Rejected):
        next(pages)


# --- single objects


def test_order_detail_and_refund_info(aurpay_fixture: Callable[[str], Any]) -> None:
    detail = aurpay_fixture("callback-order.json")
    refund = aurpay_fixture("refund-info-response.json")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/order/detail/"):
            return envelope(detail)
        return httpx.Response(200, content=jsonx.dumps(refund).encode())

    client, seen = make_client(handler)
    got = client.order_detail("20250207040935220628")
    assert got.fee == Decimal("0.00000820392") and got.raw == detail
    info = client.refund_info("20240614061316661529")
    assert info is not None and info.amount - info.network_fee == info.obtained
    assert [r.url.path for r in seen.requests] == [
        "/api/v2/order/detail/20250207040935220628",
        "/api/v2/order/refund-info/20240614061316661529",
    ]


def test_ids_are_escaped_into_one_path_segment() -> None:
    client, seen = make_client(lambda r: envelope(order("a/b?c")))
    client.order_detail("a/b?c")
    assert seen.requests[0].url.raw_path == b"/api/v2/order/detail/a%2Fb%3Fc"


@pytest.mark.parametrize("response", [httpx.Response(404), envelope(None), envelope({})])
def test_no_refund_info_is_none(response: httpx.Response) -> None:
    client, _ = make_client(lambda r: response)
    assert client.refund_info("X") is None


def test_order_detail_without_data_is_not_found() -> None:
    client, _ = make_client(lambda r: envelope(None))
    with pytest.raises(NotFound):
        client.order_detail("X")


@pytest.mark.parametrize(
    ("data", "reason"),
    [(order("X", amount="abc"), "amount: not a decimal"), (order("Y"), "does not match")],
)
def test_a_malformed_single_object_is_an_invalid_record(data: dict[str, Any], reason: str) -> None:
    client, _ = make_client(lambda r: envelope(data))
    with pytest.raises(InvalidRecord, match=reason) as caught:
        client.order_detail("X")
    assert caught.value.rejected.raw == data
    assert caught.value.rejected.external_id == "X"


# --- secrets


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The real logging setup (with the Redactor) into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("debug", "json", secrets=[TOKEN, SECRET, API_KEY], stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()


def echoing(request: httpx.Request) -> httpx.Response:
    """A server that echoes the credentials it got into its error message."""
    echoed = " ".join(request.headers.get(h, "") for h in ("API-Key", "API-Token", "Signature"))
    return httpx.Response(503, json={"code": 9, "message": f"bad creds {echoed}", "result": False})


@pytest.mark.parametrize(
    "auth",
    [ApiKeyAuth(SecretStr(API_KEY)), SignatureAuth(SecretStr(TOKEN), SecretStr(SECRET))],
)
def test_no_secret_in_logs_reprs_or_errors(
    auth: ApiKeyAuth | SignatureAuth, log_stream: io.StringIO
) -> None:
    client, _ = make_client(echoing, auth=auth, retries=2)

    with pytest.raises(Unavailable) as caught:
        client.order_detail("X")
    structlog.get_logger("test").error("sync_failed", error=caught.value, exc_info=caught.value)

    output = log_stream.getvalue()
    assert "aurpay_call_retry" in output and "aurpay_call_failed" in output
    for text in (output, repr(client), str(client), str(caught.value), repr(caught.value)):
        for secret in (TOKEN, SECRET, API_KEY):
            assert secret not in text
    assert caught.value.provider_message is not None
    assert "***" in caught.value.provider_message  # the echo is masked, the rest kept


def test_client_log_events_carry_no_credentials_even_unredacted() -> None:
    client, _ = make_client(
        echoing, auth=SignatureAuth(SecretStr(TOKEN), SecretStr(SECRET)), retries=1
    )
    with capture_logs() as events, pytest.raises(Unavailable):
        client.order_detail("X")

    assert [e["event"] for e in events] == [
        "aurpay_call",
        "aurpay_call_retry",
        "aurpay_call",
        "aurpay_call_failed",
    ]
    for secret in (TOKEN, SECRET):
        assert secret not in repr(events)
