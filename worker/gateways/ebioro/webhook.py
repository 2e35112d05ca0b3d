"""Ebioro's webhooks: verify ``X-WEBHOOK-AUTH`` and name the payment to re-fetch.

Ebioro signs the raw body with the API secret key and nothing else: no timestamp, no nonce
(docs/gateways/ebioro.md (E-HOOK-1)). So a delivery is deduplicated by its content (a SHA-256 of
the exact
bytes, remembered for ``DEDUPE_SECONDS``; a repeat is acknowledged so the provider stops
retrying), and the body is never trusted: only the payment id is read, and the payment itself
comes from a fresh API call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from worker.gateways.contract import (
    Accepted,
    Delivery,
    FollowUp,
    InboundPolicy,
    Refused,
    Verdict,
)
from worker.gateways.ebioro.auth import verify_webhook, webhook_payment_id
from worker.gateways.ebioro.settings import EbioroSettings

DEDUPE_SECONDS = 7 * 24 * 3600  # a provider retry storm is over long before a week


@dataclass(frozen=True)
class EbioroWebhooks:
    """The ``Verifier`` of one Ebioro account; the secret stays out of the repr."""

    secret: str | None = field(repr=False)
    not_configured: str

    @classmethod
    def for_account(cls, settings: EbioroSettings, policy: InboundPolicy) -> EbioroWebhooks:
        # No timestamp to hold against policy.max_skew_seconds: freshness is the dedupe's job.
        secret = settings.secret_key
        return cls(
            secret=secret.get_secret_value() if secret else None,
            not_configured=f"Ebioro is not configured: set {settings.variable('secret_key')}",
        )

    def warnings(self) -> list[str]:
        return [] if self.secret else [self.not_configured]

    def check(self, delivery: Delivery) -> Verdict:
        if delivery.method != "POST":
            return Refused(405, "method_not_allowed", "method not allowed")
        if not self.secret:
            return Refused(503, "not_configured", self.not_configured)
        if not verify_webhook(self.secret, delivery.body, delivery.headers.get("x-webhook-auth")):
            return Refused(401, "bad_signature", "unauthorized")
        payment_id = webhook_payment_id(delivery.body)
        if payment_id is None:
            return Refused(400, "no_payment_id", "no payment id (data.id) in the body")
        return Accepted(
            FollowUp("payment", payment_id),
            replay_key="ebioro-webhook:" + hashlib.sha256(delivery.body).hexdigest(),
            replay_seconds=DEDUPE_SECONDS,
            replays_refused=False,
        )
