"""The callbacks edge under hostile requests: every refusal is a JSON 4xx, and the server keeps
serving signed callbacks afterwards."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.integration.inbound.conftest import EBIORO_SECRET, WEBHOOK_PATH
from worker.edge.json_depth import nests_deeper_than
from worker.gateways.ebioro.auth import sign_webhook
from worker.inbound.server import CallbackServer
from worker.metrics import REGISTRY

SECRET, PATH = EBIORO_SECRET, WEBHOOK_PATH


def _signed(body: bytes, **headers: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-WEBHOOK-AUTH": sign_webhook(SECRET, body)} | {
        k.replace("_", "-"): v for k, v in headers.items()
    }


def _assert_json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["ok"] is False and body["status"] == status and body["error"]
    return dict(body)


def _still_serving(srv: CallbackServer, enqueued: list[str], payment: str) -> None:
    body = json.dumps({"data": {"id": payment}}).encode()
    response = httpx.post(srv.url + PATH, content=body, headers=_signed(body), timeout=10)
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert enqueued[-1] == payment


def test_a_validly_signed_200_kb_of_nested_brackets_is_a_json_400(
    server: tuple[CallbackServer, list[str]],
) -> None:
    srv, enqueued = server
    for body in (b"[" * 200_000, b'{"data":' * 50_000 + b"1" + b"}" * 50_000):
        response = httpx.post(srv.url + PATH, content=body, headers=_signed(body), timeout=10)
        assert "nested" in str(_assert_json_error(response, 400)["error"])
    assert enqueued == []
    _still_serving(srv, enqueued, "pt_after_nesting")


def test_malformed_json_is_a_json_400(server: tuple[CallbackServer, list[str]]) -> None:
    srv, enqueued = server
    for body in (b'{"data": {"id": "pt_1"', b"\xff\xfe{}", b"{'data': 1}"):
        response = httpx.post(srv.url + PATH, content=body, headers=_signed(body), timeout=10)
        _assert_json_error(response, 400)
    assert enqueued == []
    _still_serving(srv, enqueued, "pt_after_malformed")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "GET", "OPTIONS"])
def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(
    server: tuple[CallbackServer, list[str]], method: str
) -> None:
    srv, enqueued = server
    response = httpx.request(method, srv.url + PATH, timeout=10)
    _assert_json_error(response, 405)
    assert response.headers["allow"] == "POST"  # Ebioro webhooks are POSTs only
    health = httpx.request(method, srv.url + "/healthz", timeout=10)
    if method == "GET":
        assert health.json() == {"status": "ok"}
    else:
        _assert_json_error(health, 405)
        assert health.headers["allow"] == "GET, HEAD"
    _still_serving(srv, enqueued, f"pt_after_{method.lower()}")


def test_a_50_mb_body_is_a_json_413_before_it_is_read(
    server: tuple[CallbackServer, list[str]],
) -> None:
    srv, enqueued = server
    host, port = srv.url.removeprefix("http://").split(":")
    # Only the headers are sent: the answer must not wait for 50 MB that never come.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 << 20}\r\n\r\n".encode()
        )
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"413"
    assert b"application/json" in head
    assert json.loads(body)["status"] == 413
    # And sent in full, as a client that does not wait for the answer would: the server
    # reads and discards the rest so that the answer reaches it (no reset).
    big = b"[" + b"0," * (25 << 20) + b"0]"
    response = httpx.post(srv.url + PATH, content=big, headers=_signed(big), timeout=30)
    _assert_json_error(response, 413)
    assert enqueued == []
    _still_serving(srv, enqueued, "pt_after_large")


def test_garbage_request_lines_and_huge_headers_get_json_errors(
    server: tuple[CallbackServer, list[str]],
) -> None:
    srv, enqueued = server
    host, port = srv.url.removeprefix("http://").split(":")
    for request, status in (
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (f"GET {PATH} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 100_000}\r\n\r\n".encode(), b"431"),
    ):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == status, raw[:200]
        assert json.loads(body)["ok"] is False
    _still_serving(srv, enqueued, "pt_after_garbage")


def test_unknown_paths_are_json_404s(server: tuple[CallbackServer, list[str]]) -> None:
    srv, _ = server
    _assert_json_error(httpx.get(srv.url + "/callbacks/nowhere", timeout=10), 404)
    _assert_json_error(httpx.post(srv.url + "/", timeout=10), 404)


def test_nesting_depth_is_counted_outside_strings_only() -> None:
    assert not nests_deeper_than(b'{"a": "' + b"[" * 500 + b'"}', 64)
    assert not nests_deeper_than(b'{"a": "\\"[[[[[[", "b": [[1]]}', 3)
    assert nests_deeper_than(b'{"a": [[[1]]]}', 3)
    assert not nests_deeper_than(b"[]" * 10_000, 1)
    assert not nests_deeper_than(b"plain text", 0)


def test_answers_and_callback_outcomes_are_counted(
    server: tuple[CallbackServer, list[str]],
) -> None:
    srv, enqueued = server
    watched = {
        "413": ("tally_http_requests_total", {"server": "callbacks", "status": "413"}),
        "405": ("tally_http_requests_total", {"server": "callbacks", "status": "405"}),
        "accepted": ("tally_callbacks_total", {"source": "ebioro", "outcome": "accepted"}),
        "rejected": ("tally_callbacks_total", {"source": "ebioro", "outcome": "rejected"}),
        "refused": ("tally_callbacks_total", {"source": "ebioro", "outcome": "refused"}),
    }

    def counts() -> dict[str, float]:
        return {k: REGISTRY.get_sample_value(n, ls) or 0.0 for k, (n, ls) in watched.items()}

    before = counts()
    httpx.post(srv.url + PATH, content=b"x" * (2 << 20), timeout=10)
    httpx.put(srv.url + PATH, timeout=10)
    httpx.post(srv.url + PATH, content=b"{}", headers={"X-WEBHOOK-AUTH": "0" * 64}, timeout=10)
    _still_serving(srv, enqueued, "pt_counted")

    after = counts()
    assert {k: after[k] - before[k] for k in watched} == dict.fromkeys(watched, 1.0)
