"""Posts payment changes to the merchant's webhook URL, signed the way Ebioro does
(docs/gateways/ebioro.md (E-HOOK-2)).

Body: compact JSON ``{"data": {...}}`` with exactly the fields of the doc's
``transaction_updated`` example (``type`` is the event: ``transaction_created`` when a payment
is added, ``transaction_updated`` when it is paid, settled or refunded). Header
``X-WEBHOOK-AUTH`` = hex HMAC-SHA256(secret key, the exact bytes sent). One attempt, no retry
(documented); every attempt is recorded on the world.
"""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.ebioro.model import Delivery, EbioroCredentials, WebhookTarget
from sandbox.ebioro.world import World
from sandbox.kit.sender import BackgroundSender
from worker.gateways.ebioro.auth import WEBHOOK_HEADER, compact_body, sign_webhook
from worker.logging import get_logger

log = get_logger(__name__)
Job = tuple[WebhookTarget, str, dict[str, Any]]  # (target, event, payment)
DATA_FIELDS = (
    "id",
    "status",
    "settlement_status",
    "amount",
    "settlement_amount",
    "settlement_currency",
    "settlement_fee",
    "amount_paid",
    "amount_received",
    "amount_remaining",
    "history",
    "metadata",
)


def webhook_body(event: str, payment: dict[str, Any]) -> bytes:
    """The exact bytes posted (and signed) for ``event`` about ``payment``."""
    data = {"type": event, **{name: payment.get(name) for name in DATA_FIELDS}}
    return compact_body({"data": data})


class WebhookSender:
    """Listens to the world and posts webhooks from one daemon thread."""

    def __init__(
        self, world: World, credentials: EbioroCredentials, timeout_seconds: float = 2.0
    ) -> None:
        self._world = world
        self._credentials = credentials
        self._sender: BackgroundSender[Job, Delivery] = BackgroundSender(
            "ebioro-sandbox-webhooks",
            self._deliver,
            _failed,
            world.record_delivery,
            timeout_seconds,
        )

    def start(self) -> None:
        self._world.subscribe(self._enqueue)
        self._sender.start()

    def stop(self) -> None:
        self._sender.stop()

    def _enqueue(self, event: str, payment: dict[str, Any]) -> None:
        target = self._world.webhook_target()  # the target when the change happened
        if target is not None:
            self._sender.submit((target, event, payment))

    def _deliver(self, client: httpx.Client, job: Job) -> Delivery:
        target, event, payment = job
        body = webhook_body(event, payment)
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_HEADER: sign_webhook(self._credentials.secret_key, body),
        }
        try:
            response = client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = type(exc).__name__
            log.warning("sandbox_webhook_failed", payment_id=payment["id"], error=error)
            return Delivery(payment["id"], event, target.url, None, error)
        log.info("sandbox_webhook", payment_id=payment["id"], status=response.status_code)
        return Delivery(payment["id"], event, target.url, response.status_code)


def _failed(job: Job, error: str) -> Delivery:
    target, event, payment = job
    return Delivery(payment["id"], event, target.url, None, error)
