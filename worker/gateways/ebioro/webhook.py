"""The HTTP endpoint for Ebioro's webhooks: verify ``X-WEBHOOK-AUTH``, dedupe, enqueue a re-fetch.

Ebioro signs the raw body with the API secret key and nothing else: no timestamp, no nonce
(shared/docs/ebioro-api.md §10). So a delivery is deduplicated by its content (a SHA-256 of the
exact bytes, remembered for ``DEDUPE_SECONDS``), and the body is never trusted: only the payment
id is read, and the payment itself comes from a fresh API call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from worker.gateways.ebioro.auth import verify_webhook, webhook_payment_id
from worker.inbound.replay import ReplayCache
from worker.logging import get_logger

log = get_logger(__name__)

WEBHOOK_PATH = "/callbacks/ebioro"
DEDUPE_SECONDS = 7 * 24 * 3600  # a provider retry storm is over long before a week

Response = tuple[int, dict[str, Any]]


def handle_ebioro_webhook(
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    replay_cache: ReplayCache,
    enqueue_refresh: Callable[[str], Any],
) -> Response:
    """Authenticate one webhook and enqueue a refresh of its payment: (status, JSON body)."""
    if method != "POST":
        return 405, {"ok": False, "error": "method not allowed"}
    if not secret:
        return 503, {"ok": False, "error": "Ebioro is not configured: set EBIORO_SECRET_KEY"}
    lowered = {k.lower(): v for k, v in headers.items()}
    if not verify_webhook(secret, body, lowered.get("x-webhook-auth")):
        log.warning("webhook_refused", source="ebioro", reason="bad_signature")
        return 401, {"ok": False, "error": "unauthorized"}
    payment_id = webhook_payment_id(body)
    if payment_id is None:
        log.warning("webhook_rejected", source="ebioro", reason="no_payment_id")
        return 400, {"ok": False, "error": "no payment id (data.id) in the body"}
    key = "ebioro-webhook:" + hashlib.sha256(body).hexdigest()
    if not replay_cache.remember(key, DEDUPE_SECONDS):
        log.info("webhook_duplicate", source="ebioro", payment_id=payment_id)
        return 200, {"ok": True, "duplicate": True}
    try:
        enqueue_refresh(payment_id)
    except Exception:
        replay_cache.forget(key)  # let the provider's retry through
        log.exception("webhook_enqueue_failed", source="ebioro", payment_id=payment_id)
        return 503, {"ok": False, "error": "temporarily unavailable, retry later"}
    log.info("webhook_accepted", source="ebioro", payment_id=payment_id)
    return 200, {"ok": True}
