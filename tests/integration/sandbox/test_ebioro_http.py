"""The Ebioro sandbox over real HTTP: digest auth, paging, errors, faults, admin API, webhooks
and the ``tally sandbox --provider ebioro`` command."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ledger import jsonx
from sandbox.ebioro import (
    EbioroSandboxConfig,
    RunningSandbox,
    start_sandbox,
)
from sandbox.ebioro import truth as oracle
from worker.gateways.ebioro.auth import DigestAuth, digest_headers, verify_webhook
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY as SANDBOX_EBIORO_PUBLIC_KEY
from worker.gateways.ebioro.settings import SANDBOX_SECRET_KEY as SANDBOX_EBIORO_SECRET_KEY

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(EbioroSandboxConfig(seed=21, payments=45, mismatch_rate=0.2)) as running:
        yield running


def digest_client(sandbox: RunningSandbox, secret: str = SANDBOX_EBIORO_SECRET_KEY) -> httpx.Client:
    auth = DigestAuth(SANDBOX_EBIORO_PUBLIC_KEY, SecretStr(secret))
    return httpx.Client(base_url=sandbox.base_url, auth=auth, timeout=5)


@pytest.fixture(scope="module")
def client(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with digest_client(sandbox) as http:
        yield http


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return jsonx.loads(response.content)


def assert_error(response: httpx.Response, status: int) -> str:
    error = body(response, status)
    assert list(error) == ["reason", "statusCode"] and error["statusCode"] == status
    assert isinstance(error["reason"], str) and error["reason"]
    return str(error["reason"])


def test_pages_walk_every_payment_newest_first(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    first = body(client.get("/payments"))
    assert first["meta"] == {
        "totalItems": 45,
        "itemCount": 20,
        "itemsPerPage": 20,
        "totalPages": 3,
        "currentPage": 1,
    }
    seen, page = [], 1
    while True:
        listed = body(client.get("/payments", params={"page": page, "limit": 7}))
        seen += listed["items"]
        if listed["meta"]["currentPage"] >= listed["meta"]["totalPages"]:
            break
        page += 1
    assert page == 7 and seen == sandbox.world.truth()["payments"]
    capped = body(client.get("/payments", params={"limit": 500}))
    assert capped["meta"]["itemsPerPage"] == 100 and len(capped["items"]) == 45


def test_single_objects_and_404s(sandbox: RunningSandbox, client: httpx.Client) -> None:
    refund = sandbox.world.truth()["refunds"][0]
    assert body(client.get(f"/refunds/{refund['refund_id']}")) == refund
    payment = refund["payment"]
    assert body(client.get(f"/payments/{payment['id']}"))["id"] == payment["id"]
    assert "not found" in assert_error(client.get("/payments/pt_unknown00"), 404)
    assert_error(client.get("/refunds/rf_unknown00"), 404)
    assert_error(client.get("/api/v1/payments"), 404)
    assert_error(client.get("/payments", params={"page": 0}), 400)
    assert_error(client.post("/payments", json={"amount": {"value": 1, "currency": "USD"}}), 405)


def send_signed(client: httpx.Client, path: str, **overrides: Any) -> httpx.Response:
    """GET ``path`` with digest headers built by hand, then ``overrides`` applied."""
    now = overrides.pop("now", datetime.now(UTC))
    secret = overrides.pop("secret", SANDBOX_EBIORO_SECRET_KEY)
    signed_path = overrides.pop("signed_path", path)
    headers = digest_headers(SANDBOX_EBIORO_PUBLIC_KEY, secret, "GET", signed_path, now=now)
    headers.update(overrides)
    with httpx.Client(base_url=str(client.base_url), timeout=5) as plain:
        return plain.get(path, headers=headers)


def test_digest_auth_accepts_the_recipe_and_refuses_the_rest(client: httpx.Client) -> None:
    path = "/payments?page=2&limit=5"
    assert body(send_signed(client, path))["meta"]["currentPage"] == 2
    assert body(send_signed(client, path, now=datetime.now(UTC) - timedelta(seconds=240)))
    refusals = {
        "Signature verification failed": [
            send_signed(client, path, secret="sk_test_wrong"),
            send_signed(client, path, signed_path="/payments"),  # the query is signed too
        ],
        "Request timed out": [
            send_signed(client, path, now=datetime.now(UTC) - timedelta(seconds=400)),
            send_signed(client, path, now=datetime.now(UTC) + timedelta(seconds=400)),
        ],
        "Invalid public key": [send_signed(client, path, **{"X-Digest-Key": "pk_test_other"})],
        "Missing header values": [httpx.get(f"{client.base_url}{path}")],
    }
    for reason, responses in refusals.items():
        for response in responses:
            assert assert_error(response, 401) == reason


def test_faults_429_500_truncated_and_junk_records() -> None:
    limited_config = EbioroSandboxConfig(seed=4, payments=30, rate_429=1.0)
    with start_sandbox(limited_config) as sandbox, digest_client(sandbox) as http:
        limited = http.get("/payments")
        assert_error(limited, 429)
        assert limited.headers["Retry-After"] == "1"
        admin = httpx.put(f"{sandbox.base_url}/_admin/faults", json={"rate_429": 0, "rate_500": 1})
        assert body(admin)["rate_500"] == 1
        assert_error(http.get("/refunds"), 500)
        sandbox.world.set_faults(rate_500=0.0, rate_truncated=1.0)
        with pytest.raises(jsonx.InvalidJSON):
            jsonx.loads(http.get("/payments").content)
    config = EbioroSandboxConfig(seed=4, payments=60, rate_invalid_record=0.3)
    with start_sandbox(config) as sandbox, digest_client(sandbox) as http:
        junk = sandbox.world.invalid_records()
        assert {j.endpoint for j in junk} == {"payments", "refunds"}
        listed = body(http.get("/payments", params={"limit": 100}))["items"]
        listed += body(http.get("/refunds", params={"limit": 100}))["items"]
        assert all(j.record in listed for j in junk)


class Receiver:
    """A webhook endpoint on a free port that keeps each raw body and its signature header."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[bytes, str | None]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((raw, self.headers.get("X-WEBHOOK-AUTH")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/ebioro"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self) -> tuple[bytes, str | None]:
        return self.received.get(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_admin_changes_are_served_and_posted_as_signed_webhooks(receiver: Receiver) -> None:
    config = EbioroSandboxConfig(seed=8, payments=20, mismatch_rate=0, webhook_url=receiver.url)
    with start_sandbox(config) as sandbox, digest_client(sandbox) as http:
        admin = f"{sandbox.base_url}/_admin"
        (payment_id,) = body(httpx.post(f"{admin}/payments", json={"status": "open"}))[
            "payment_ids"
        ]
        assert body(http.get("/payments", params={"limit": 1}))["items"][0]["id"] == payment_id
        paid = body(httpx.post(f"{admin}/payments/{payment_id}/pay", json={"mismatch": True}))
        assert body(http.get(f"/payments/{payment_id}")) == paid
        refund = body(httpx.post(f"{admin}/payments/{payment_id}/refund", json={}))
        assert body(http.get(f"/refunds/{refund['refund_id']}"))["payment"]["status"] == "refunded"
        changed = httpx.put(f"{admin}/refunds/{refund['refund_id']}", json={"settlement_Id": None})
        assert body(changed)["settlement_Id"] is None
        events = []
        for _ in range(3):  # created, paid, refunded
            raw, signature = receiver.next()
            assert verify_webhook(SANDBOX_EBIORO_SECRET_KEY, raw, signature)
            data = jsonx.loads(raw)["data"]
            events.append((data["type"], data["id"], data["status"]))
        assert events == [
            ("transaction_created", payment_id, "open"),
            ("transaction_updated", payment_id, "paid"),
            ("transaction_updated", payment_id, "refunded"),
        ]
        assert sandbox.world.wait_for_deliveries(3, timeout=5)
        assert [d.status for d in sandbox.world.deliveries()] == [200, 200, 200]
        truth = body(httpx.get(f"{admin}/truth"))
        assert {tuple(m) for m in truth["expected_mismatches"]} == {
            (oracle.RULE_AMOUNTS, payment_id),
            (oracle.RULE_REFUND_SETTLEMENT, refund["refund_id"]),
        }


def test_admin_errors_use_the_error_shape(sandbox: RunningSandbox) -> None:
    admin = f"{sandbox.base_url}/_admin"
    paid = next(p["id"] for p in sandbox.world.truth()["payments"] if p.get("status") == "paid")
    assert "paid" in assert_error(httpx.post(f"{admin}/payments/{paid}/pay"), 409)
    assert_error(httpx.post(f"{admin}/payments/pt_unknown00/settle"), 404)
    assert_error(httpx.post(f"{admin}/payments", content=b"{nope"), 400)
    assert_error(httpx.put(f"{admin}/webhook", json={"url": "ftp://x"}), 400)
    assert_error(httpx.get(f"{admin}/nothing"), 404)


def test_tally_sandbox_provider_ebioro_serves_until_sigterm(tmp_path: Path) -> None:
    """It reads none of the client's settings: half an Ebioro account (keys, no URL) in the
    environment does not stop it, and its banner gives the client's lines."""
    script = "import sys\nfrom worker.app.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    argv = ["sandbox", "--provider", "ebioro", "--port", "0", "--payments", "12", "--seed", "3"]
    env = {**os.environ, "EBIORO_PUBLIC_KEY": "pk_test_cli", "EBIORO_SECRET_KEY": "sk_test_cli"}
    env.pop("EBIORO_BASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # its log lines; small, read once it has stopped
        text=True,
    )
    try:
        assert process.stdout is not None
        intro = [process.stdout.readline()]
        while "Press Ctrl-C" not in intro[-1] and intro[-1]:
            intro.append(process.stdout.readline())
        assert intro[0].startswith("Ebioro sandbox listening on http://127.0.0.1:"), intro
        base_url = intro[0].rsplit(" ", 1)[1].strip()
        auth = DigestAuth(SANDBOX_EBIORO_PUBLIC_KEY, SecretStr(SANDBOX_EBIORO_SECRET_KEY))
        listed = httpx.get(f"{base_url}/payments", auth=auth, timeout=5)
        assert body(listed)["meta"]["totalItems"] == 12
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        rest = process.stdout.read()
    finally:
        process.kill()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert f"    EBIORO_BASE_URL={base_url}\n" in intro
    assert f"    EBIORO_SECRET_KEY={SANDBOX_EBIORO_SECRET_KEY}\n" in intro  # public, not a secret
    assert "sk_test_cli" not in "".join(intro) + rest
    assert rest.rstrip().endswith("sandbox stopped")
