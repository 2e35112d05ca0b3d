"""The Ebioro webhook endpoint over real HTTP: signature over the raw body, content dedupe."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.integration.inbound.conftest import EBIORO_SECRET, WEBHOOK_PATH
from worker.gateways.ebioro.auth import compact_body, sign_webhook
from worker.inbound.server import CallbackServer

SECRET = EBIORO_SECRET


def _post(srv: CallbackServer, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-WEBHOOK-AUTH"] = signature
    return httpx.post(srv.url + WEBHOOK_PATH, content=body, headers=headers)


def test_a_signed_webhook_enqueues_its_payment_once(
    server: tuple[CallbackServer, list[str]], ebioro_fixture: Callable[[str], object]
) -> None:
    srv, enqueued = server
    body = compact_body(ebioro_fixture("webhook-transaction-updated.json"))
    first = _post(srv, body, sign_webhook(SECRET, body))
    assert first.status_code == 200 and first.json() == {"ok": True}
    again = _post(srv, body, sign_webhook(SECRET, body))  # the provider retried
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert enqueued == ["pt_ABC123"]


def test_forged_or_tampered_webhooks_are_refused(
    server: tuple[CallbackServer, list[str]], ebioro_fixture: Callable[[str], object]
) -> None:
    srv, enqueued = server
    body = compact_body(ebioro_fixture("webhook-transaction-updated.json"))
    signature = sign_webhook(SECRET, body)
    assert _post(srv, body, None).status_code == 401
    assert _post(srv, body, sign_webhook("sk_test_other", body)).status_code == 401
    tampered = body.replace(b'"paid"', b'"refunded"', 1)
    assert _post(srv, tampered, signature).status_code == 401  # the signature covers the bytes
    assert enqueued == []


def test_a_webhook_without_a_payment_id_is_a_bad_request(
    server: tuple[CallbackServer, list[str]],
) -> None:
    srv, enqueued = server
    body = b'{"data":{"type":"transaction_updated"}}'
    response = _post(srv, body, sign_webhook(SECRET, body))
    assert response.status_code == 400 and enqueued == []
    assert httpx.get(srv.url + WEBHOOK_PATH).status_code == 405
