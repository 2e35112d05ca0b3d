"""Aurpay read-only API client: orders, order details, refund info and transactions."""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any, Unpack
from zoneinfo import ZoneInfo

import httpx

from worker.errors import ConfigError, NotFound
from worker.gateways.aurpay.auth import ApiKeyAuth, SignatureAuth
from worker.gateways.aurpay.paging import AurpayPage, parse_page
from worker.gateways.aurpay.payloads import (
    SOURCE,
    Order,
    RefundInfo,
    parse_order,
    parse_refund_info,
)
from worker.gateways.aurpay.responses import RESPONSES
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.base.client import ClientOptions, Connection, GatewayClient
from worker.gateways.base.paging import Feed
from worker.gateways.base.records import R, same_object

ORDER_DETAIL = "/api/v2/order/detail/{order_id}"
REFUND_INFO = "/api/v2/order/refund-info/{order_id}"


class AurpayClient(GatewayClient[AurpayPage[Any], AurpaySettings]):
    """Typed, read-only access to Aurpay's orders, order details, refund info and transactions.

    Aurpay sends times without a zone; they are read in ``naive_tz``.
    """

    gateway = SOURCE
    size_parameter = "size"
    responses = RESPONSES

    def __init__(
        self,
        http: httpx.Client,
        *,
        auth: ApiKeyAuth | SignatureAuth,
        naive_tz: tzinfo = UTC,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(http, auth=auth, **options)
        self._naive_tz = naive_tz

    @classmethod
    def connection(cls, settings: AurpaySettings) -> Connection:
        """The signature method wins when token and secret are set; else the API key."""
        auth: ApiKeyAuth | SignatureAuth
        if settings.api_token is not None and settings.api_secret is not None:
            auth = SignatureAuth(
                settings.api_token, settings.api_secret, sign_query=settings.sign_query
            )
        elif settings.api_key is not None:
            auth = ApiKeyAuth(settings.api_key)
        else:
            key, token = settings.variable("api_key"), settings.variable("api_token")
            secret = settings.variable("api_secret")
            raise ConfigError(f"invalid setting {key}: set it, or {token} and {secret}")
        naive_tz = ZoneInfo(settings.naive_timezone)
        return Connection(settings.base_url, auth, {"naive_tz": naive_tz})

    def read_page(self, body: Any, feed: Feed[R], number: int, size: int) -> AurpayPage[R]:
        return parse_page(body, feed.parse, self._naive_tz)

    # --- single objects

    def order_detail(self, order_id: str) -> Order:
        """The full order; ``NotFound`` if unknown, ``InvalidRecord`` if it fails validation."""
        return self.fetch_object(ORDER_DETAIL, order_id, lambda d: parse_order(d, self._naive_tz))

    def refund_info(self, order_id: str) -> RefundInfo | None:
        """The order's refund info, or None when Aurpay has none (404 or empty ``data``)."""
        try:
            data = self.get_object(REFUND_INFO, order_id)
        except NotFound:
            return None
        if data is None or data == {}:
            return None
        return same_object(parse_refund_info(data, self._naive_tz), order_id)
