"""Aurpay's callbacks: authenticate the token, Date and signature, and name the order to re-fetch.

Aurpay's signature covers only the Date header and the URL it called (docs/gateways/aurpay.md
(A-CB-1)), never
the body: so the body is not trusted, only an order id is taken (query first, then the JSON
body), and the order itself comes from a fresh API call. The accepted signature is the replay
key, remembered for twice the allowed clock skew.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ledger import jsonx
from worker.gateways.aurpay.auth import constant_time_equal, is_fresh, sign_callback
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.contract import (
    Accepted,
    Delivery,
    FollowUp,
    InboundPolicy,
    Refused,
    Verdict,
)

METHODS = ("GET", "POST")
_ORDER_ID_PARAMS = ("order_id", "id", "orderId")
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class AurpayCallbacks:
    """The ``Verifier`` of one Aurpay account; the secrets stay out of the repr."""

    token: str | None = field(repr=False)
    secret: str | None = field(repr=False)
    max_skew_seconds: int
    not_configured: str  # the error when the pair is unset, naming this account's variables

    @classmethod
    def for_account(cls, settings: AurpaySettings, policy: InboundPolicy) -> AurpayCallbacks:
        token, secret = settings.callback_token, settings.callback_secret
        return cls(
            token=token.get_secret_value() if token else None,
            secret=secret.get_secret_value() if secret else None,
            max_skew_seconds=policy.max_skew_seconds,
            not_configured="Aurpay callback authentication is not configured: set "
            f"{settings.variable('callback_token')} and {settings.variable('callback_secret')}",
        )

    @property
    def configured(self) -> bool:
        return bool(self.token and self.secret)

    def warnings(self) -> list[str]:
        return [] if self.configured else [self.not_configured]

    def check(self, delivery: Delivery) -> Verdict:
        if delivery.method not in METHODS:
            return Refused(405, "method_not_allowed", "method not allowed")
        if not self.configured:
            return Refused(503, "not_configured", self.not_configured)
        reason = self._refusal(delivery)
        if reason is not None:
            return Refused(401, reason, UNAUTHORIZED)
        order_id = _order_id(delivery)
        if order_id is None:
            return Refused(400, "no_order_id", "no valid order id in the query or body")
        # A replayed signature is refused: Aurpay signs each delivery afresh.
        return Accepted(
            FollowUp("order", order_id),
            replay_key=delivery.headers["signature"],
            replay_seconds=2 * self.max_skew_seconds,
            replays_refused=True,
        )

    def _refusal(self, delivery: Delivery) -> str | None:
        """Why the request is not authentic, or None. Reasons name the check, never a value."""
        headers = delivery.headers
        token, date = headers.get("callback-token", ""), headers.get("date", "")
        signature = headers.get("signature", "")
        if not token:
            return "missing_token"
        if not constant_time_equal(token, self.token or ""):
            return "bad_token"
        if not date:
            return "missing_date"
        if not is_fresh(date, delivery.now, self.max_skew_seconds):
            return "stale_or_invalid_date"
        if not signature:
            return "missing_signature"
        if not constant_time_equal(signature, sign_callback(self.secret or "", date, delivery.url)):
            return "bad_signature"
        return None


def _order_id(delivery: Delivery) -> str | None:
    params = parse_qs(urlsplit(delivery.target).query, keep_blank_values=True)
    candidates: list[Any] = [params[name][0] for name in _ORDER_ID_PARAMS if name in params]
    if not candidates and delivery.method == "POST" and delivery.body:
        try:
            parsed = jsonx.loads(delivery.body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            candidates.append(parsed.get("order_id"))
    for value in candidates:
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if _ORDER_ID.fullmatch(text):
            return text
    return None
