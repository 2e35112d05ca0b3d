"""Ebioro read-only API client: payments and refunds, as lists and single objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from worker.errors import ConfigError
from worker.gateways.base.client import Connection, GatewayClient
from worker.gateways.base.paging import Feed
from worker.gateways.base.records import R
from worker.gateways.ebioro.auth import DigestAuth
from worker.gateways.ebioro.paging import MAX_LIMIT, EbioroPage, parse_page
from worker.gateways.ebioro.payloads import SOURCE, Payment, Refund, parse_payment, parse_refund
from worker.gateways.ebioro.responses import RESPONSES
from worker.gateways.ebioro.settings import EBIORO_HOSTS, EbioroSettings

PAYMENT = "/payments/{id}"
REFUND = "/refunds/{id}"


class EbioroClient(GatewayClient[EbioroPage[Any], EbioroSettings]):
    """Typed, read-only access to Ebioro's payments and refunds (lists and single objects)."""

    gateway = SOURCE
    size_parameter = "limit"
    max_page_size = MAX_LIMIT
    # Every provider client sends Content-Type: application/json, GETs included
    # (docs/gateways/ebioro.md (E-SIGN-1)).
    headers: ClassVar[Mapping[str, str]] = {"Content-Type": "application/json"}
    responses = RESPONSES

    @classmethod
    def connection(cls, settings: EbioroSettings) -> Connection:
        """The key pair and the host it belongs to are all required."""
        public_key, secret_key = settings.public_key, settings.secret_key
        if not public_key or secret_key is None:
            public, secret = settings.variable("public_key"), settings.variable("secret_key")
            raise ConfigError(f"invalid setting {secret}: set {public} and {secret}")
        if settings.base_url is None:
            variable = settings.variable("base_url")
            raise ConfigError(f"invalid setting {variable}: required ({EBIORO_HOSTS})")
        return Connection(settings.base_url, DigestAuth(public_key, secret_key))

    def read_page(self, body: Any, feed: Feed[R], number: int, size: int) -> EbioroPage[R]:
        return parse_page(body, feed.parse, number, size)

    # --- single objects

    def payment(self, payment_id: str) -> Payment:
        """``GET /payments/{id}``; ``NotFound`` if unknown, ``InvalidRecord`` if malformed."""
        return self.fetch_object(PAYMENT, payment_id, parse_payment)

    def refund(self, refund_id: str) -> Refund:
        """``GET /refunds/{id}``; ``NotFound`` if unknown, ``InvalidRecord`` if malformed."""
        return self.fetch_object(REFUND, refund_id, parse_refund)
