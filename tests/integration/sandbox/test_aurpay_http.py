"""The Aurpay sandbox over real HTTP: auth, paging, errors, faults, admin API and callbacks."""

from __future__ import annotations

import queue
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import httpx
import pytest

from ledger import jsonx
from sandbox.aurpay import RunningSandbox, SandboxConfig, start_sandbox
from worker.gateways.aurpay.auth import sign_callback, signature_headers
from worker.gateways.aurpay.settings import (
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    SANDBOX_API_TOKEN,
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)

ORDERS = "/api/v2/order/"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(seed=21, orders=45, page_size_cap=20)) as running:
        yield running


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=5) as http:
        yield http


def keyed(
    client: httpx.Client, path: str, key: str = SANDBOX_API_KEY, **params: Any
) -> httpx.Response:
    """GET with the API-Key method."""
    return client.get(path, params=params or None, headers={"API-Key": key})


def signed(
    client: httpx.Client,
    path: str,
    *,
    secret: str = SANDBOX_API_SECRET,
    sign_query: bool = True,
    now: datetime | None = None,
    **params: Any,
) -> httpx.Response:
    """Sign exactly the target httpx sends, as the client's SignatureAuth does."""
    request = client.build_request("GET", path, params=params or None)
    raw_path = request.url.raw_path.decode("ascii")
    request.headers.update(
        signature_headers(SANDBOX_API_TOKEN, secret, "GET", raw_path, b"", sign_query, now=now)
    )
    return client.send(request)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    envelope = jsonx.loads(response.content)
    assert (envelope["code"], envelope["message"], envelope["result"]) == (0, "ok", True)
    return envelope["data"]


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    envelope = jsonx.loads(response.content)
    assert envelope["code"] != 0 and envelope["result"] is False
    assert isinstance(envelope["message"], str) and envelope["message"]
    return str(envelope["message"])


def test_both_auth_methods_are_accepted(client: httpx.Client) -> None:
    by_key = data(keyed(client, ORDERS, page=2, size=5))
    by_signature = data(signed(client, ORDERS, page=2, size=5))
    assert by_key == by_signature and len(by_key["data"]) == 5
    order_id = by_key["data"][0]["order_id"]
    assert data(signed(client, f"/api/v2/order/detail/{order_id}")) == by_key["data"][0]


def test_unsigned_query_is_accepted_when_the_sandbox_does_not_sign_queries() -> None:
    config = SandboxConfig(seed=1, orders=5, sign_query=False)
    with start_sandbox(config) as sandbox, httpx.Client(base_url=sandbox.base_url) as client:
        assert data(signed(client, ORDERS, sign_query=False, page=1, size=2))["total"] == 5
        assert_error(signed(client, ORDERS, sign_query=True, page=1, size=2), 401)


def test_bad_credentials_are_refused_with_the_error_envelope(client: httpx.Client) -> None:
    assert_error(keyed(client, ORDERS, key="wrong-key"), 401)
    assert_error(signed(client, ORDERS, secret="wrong-secret", page=1), 401)
    stale = datetime.now(UTC) - timedelta(seconds=301 + 60)
    assert "Date" in assert_error(signed(client, ORDERS, now=stale, page=1), 401)
    assert_error(client.get(ORDERS), 401)
    bad_date = {"API-Token": SANDBOX_API_TOKEN, "Algorithm": "HMAC-SHA256", "Date": "yesterday"}
    assert_error(client.get(ORDERS, headers={**bad_date, "Signature": "x"}), 401)
    wrong_token = signature_headers("nope", SANDBOX_API_SECRET, "GET", ORDERS, b"", True)
    assert_error(client.get(ORDERS, headers=wrong_token), 401)


def test_paging_is_newest_first_capped_and_empty_past_the_end(client: httpx.Client) -> None:
    capped = data(keyed(client, ORDERS, page=1, size=500))
    assert (capped["page"], capped["size"], capped["total"], capped["max_page"]) == (1, 20, 45, 3)
    pages = [data(keyed(client, ORDERS, page=page, size=20)) for page in (1, 2, 3)]
    rows = [order for page in pages for order in page["data"]]
    keys = [(o["create_time"], o["order_id"]) for o in rows]
    assert len(set(keys)) == 45 and keys == sorted(keys, reverse=True)
    beyond = data(keyed(client, ORDERS, page=4, size=20))
    assert (beyond["data"], beyond["max_page"], beyond["total"]) == ([], 3, 45)
    assert data(keyed(client, "/api/v2/order", page=1, size=20)) == capped  # no trailing slash
    txs = data(keyed(client, "/api/v2/tx", page=1, size=5))
    assert txs["page"] == 1 and len(txs["data"]) == 5
    assert all(isinstance(tx["amount"], str) for tx in txs["data"])
    assert_error(keyed(client, ORDERS, page="x"), 400)


def test_detail_refund_info_and_404s(client: httpx.Client, sandbox: RunningSandbox) -> None:
    truth = sandbox.world.truth()
    info = truth["refund_infos"][0]
    response = keyed(client, f"/api/v2/order/refund-info/{info['order_id']}")
    assert data(response) == info
    assert re.search(rb'"network_fee":\d', response.content)  # a JSON number, not a string
    assert_error(keyed(client, "/api/v2/order/detail/20990101000000000000"), 404)
    assert_error(keyed(client, "/api/v2/order/refund-info/20990101000000000000"), 404)
    unrefunded = next(o for o in truth["orders"] if o["status"] != "REFUNDED")
    assert_error(keyed(client, f"/api/v2/order/refund-info/{unrefunded['order_id']}"), 404)


def test_faults_429_500_truncated_and_never_on_admin(client: httpx.Client) -> None:
    client.put("/_admin/faults", json={"rate_429": 1.0, "retry_after_seconds": 3})
    limited = keyed(client, ORDERS)
    assert_error(limited, 429)
    assert limited.headers["Retry-After"] == "3"
    assert data(client.get("/_admin/truth"))["faults"]["rate_429"] == 1.0
    client.put("/_admin/faults", json={"rate_429": 0, "rate_500": 1.0})
    assert_error(keyed(client, ORDERS), 500)
    client.put("/_admin/faults", json={"rate_500": 0, "rate_truncated": 1.0})
    truncated = keyed(client, ORDERS)
    assert truncated.status_code == 200
    with pytest.raises(jsonx.InvalidJSON):
        jsonx.loads(truncated.content)
    assert_error(keyed(client, ORDERS, key="wrong"), 401)  # auth is checked before faults


def test_invalid_records_are_planted_in_list_pages() -> None:
    config = SandboxConfig(seed=8, orders=10, rate_invalid_record=1.0, page_size_cap=100)
    with start_sandbox(config) as sandbox, httpx.Client(base_url=sandbox.base_url) as client:
        page = data(keyed(client, ORDERS, page=1, size=100))
        junk = [r.record for r in sandbox.world.invalid_records() if r.endpoint == "orders"]
        assert len(junk) == 10 and page["total"] == 20
        assert all(record in page["data"] for record in junk)


def test_admin_changes_are_visible_through_the_api(client: httpx.Client) -> None:
    new_ids = data(client.post("/_admin/orders", json={"count": 2}))["order_ids"]
    newest = data(keyed(client, ORDERS, page=1, size=2))["data"]
    assert {o["order_id"] for o in newest} == set(new_ids)

    truth = data(client.get("/_admin/truth"))
    unpaid = next(o for o in truth["orders"] if o["obtained"] is None)["order_id"]
    paid = data(client.post(f"/_admin/orders/{unpaid}/pay"))
    assert data(keyed(client, f"/api/v2/order/detail/{unpaid}"))["status"] == "SUCCESS"
    txs = data(keyed(client, "/api/v2/tx", page=1, size=100))["data"]
    assert paid["tx_id"] in {tx["tx_id"] for tx in txs}

    refund = data(client.post(f"/_admin/orders/{unpaid}/refund", json={"mismatch": False}))
    detail = data(keyed(client, f"/api/v2/order/detail/{unpaid}"))
    assert detail["status"] == "REFUNDED" and detail["update_time"] > paid["update_time"]
    assert data(keyed(client, f"/api/v2/order/refund-info/{unpaid}")) == refund
    changed = data(client.put(f"/_admin/refund-info/{unpaid}", json={"obtained": 0.5}))
    now_served = data(keyed(client, f"/api/v2/order/refund-info/{unpaid}"))
    assert now_served["obtained"] == changed["obtained"] == Decimal("0.5")
    assert ["refund", unpaid] in data(client.get("/_admin/truth"))["expected_mismatches"]
    assert_error(client.post(f"/_admin/orders/{unpaid}/pay"), 409)
    assert_error(client.post("/_admin/orders/20990101000000000000/refund"), 404)


class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[tuple[str, str, dict[str, str], bytes]]

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.put((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[str, str, dict[str, str], bytes]]]]:
    received: queue.Queue[tuple[str, str, dict[str, str], bytes]] = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_callbacks_are_delivered_signed(
    method: str, client: httpx.Client, sandbox: RunningSandbox, receiver: Any
) -> None:
    base, received = receiver
    data(client.put("/_admin/callbacks", json={"url": f"{base}/cb?ref=7", "method": method}))
    unpaid = next(o for o in sandbox.world.truth()["orders"] if o["obtained"] is None)
    sandbox.world.pay(unpaid["order_id"])
    got_method, path, headers, body = received.get(timeout=5)
    assert got_method == method
    assert headers["Callback-Token"] == SANDBOX_CALLBACK_TOKEN
    assert headers["API-Key"] == SANDBOX_API_KEY
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", headers["Date"])
    expected = sign_callback(SANDBOX_CALLBACK_SECRET, headers["Date"], base + path)
    assert headers["Signature"] == expected
    if method == "GET":
        assert path == f"/cb?ref=7&order_id={unpaid['order_id']}" and body == b""
    else:
        assert path == "/cb?ref=7"
        assert jsonx.loads(body) == sandbox.world.order(unpaid["order_id"])
    assert sandbox.world.wait_for_deliveries(1, timeout=5)
    assert [(d.order_id, d.status) for d in sandbox.world.deliveries()] == [
        (unpaid["order_id"], 200)
    ]


def test_a_dead_receiver_is_recorded_and_harmless(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Receiver) as closed:
        dead_url = f"http://127.0.0.1:{closed.server_address[1]}/cb"
    sandbox.world.set_callbacks(dead_url, "POST")
    unpaid = next(o for o in sandbox.world.truth()["orders"] if o["obtained"] is None)
    sandbox.world.pay(unpaid["order_id"])
    assert sandbox.world.wait_for_deliveries(1, timeout=5)
    (delivery,) = sandbox.world.deliveries()
    assert delivery.status is None and delivery.error
    assert data(keyed(client, ORDERS))["total"] == 45
