"""Calls the merchant back when an order is paid or refunded, the way Aurpay does
(docs/gateways/aurpay.md (A-CB-2, A-CB-3, A-CB-4, A-CB-5)).

GET by default, with the order id added as query parameter ``order_id`` (what Aurpay puts on a
GET callback is not documented); POST with the order object as JSON body when the target says
so. Headers: ``API-Key`` (documented: the merchant's key rides on callbacks), ``Callback-Token``,
``Date`` (ISO-8601 UTC, ``2024-06-17T00:00:00Z``) and ``Signature`` =
base64(HMAC-SHA256(callback secret, "{Date} | {full URL called}")). One background thread sends
them in order with a short timeout and records every attempt on the world; a failing receiver
never disturbs the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from ledger import jsonx
from sandbox.aurpay.model import CallbackTarget, Delivery, SandboxCredentials
from sandbox.aurpay.world import World
from sandbox.kit.sender import BackgroundSender
from worker.gateways.aurpay.auth import sign_callback
from worker.logging import get_logger

log = get_logger(__name__)
Job = tuple[CallbackTarget, dict[str, Any]]


def callback_url(target: CallbackTarget, order_id: str) -> str:
    """The exact URL called (and signed): GET adds ``order_id`` to the target's query."""
    url = target.url
    if target.method == "GET":
        parts = urlsplit(url)
        extra = urlencode({"order_id": order_id})
        url = urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))
    return str(httpx.URL(url))  # as httpx will send it, so the signature covers what arrives


class CallbackSender:
    """Listens to the world and delivers callbacks from one daemon thread."""

    def __init__(
        self,
        world: World,
        credentials: SandboxCredentials,
        timeout_seconds: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._world = world
        self._credentials = credentials
        self._clock = clock
        self._sender: BackgroundSender[Job, Delivery] = BackgroundSender(
            "sandbox-callbacks", self._deliver, _failed, world.record_delivery, timeout_seconds
        )

    def start(self) -> None:
        self._world.subscribe(self._enqueue)
        self._sender.start()

    def stop(self) -> None:
        self._sender.stop()

    def _enqueue(self, event: str, order: dict[str, Any]) -> None:
        target = self._world.callback_target()  # the target when the change happened
        if target is not None:
            self._sender.submit((target, order))

    def _deliver(self, client: httpx.Client, job: Job) -> Delivery:
        target, order = job
        url = callback_url(target, order["order_id"])
        date = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "API-Key": self._credentials.api_key,
            "Callback-Token": self._credentials.callback_token,
            "Date": date,
            "Signature": sign_callback(self._credentials.callback_secret, date, url),
        }
        try:
            if target.method == "POST":
                body = jsonx.dumps(order).encode("utf-8")
                headers["Content-Type"] = "application/json"
                response = client.post(url, content=body, headers=headers)
            else:
                response = client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            error = type(exc).__name__
            log.warning("sandbox_callback_failed", order_id=order["order_id"], error=error)
            return Delivery(order["order_id"], target.method, url, None, error)
        log.info("sandbox_callback", order_id=order["order_id"], status=response.status_code)
        return Delivery(order["order_id"], target.method, url, response.status_code)


def _failed(job: Job, error: str) -> Delivery:
    target, order = job
    return Delivery(order["order_id"], target.method, target.url, None, error)
