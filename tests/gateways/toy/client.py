"""Toy's read-only API client on the shared ``GatewayClient``: bearer key, lists, single objects."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx
from pydantic import SecretStr

from tests.gateways.toy.paging import MAX_PER_PAGE, ToyPage, parse_page
from tests.gateways.toy.payloads import (
    SOURCE,
    Credit,
    Invoice,
    Settlement,
    parse_credit,
    parse_invoice,
    parse_settlement,
)
from tests.gateways.toy.settings import ToySettings
from worker.errors import ConfigError
from worker.gateways.base.client import Connection, GatewayClient
from worker.gateways.base.http import GatewayAuth
from worker.gateways.base.paging import Feed
from worker.gateways.base.records import R
from worker.gateways.base.responses import ResponseRules

INVOICE = "/v1/invoices/{id}"
CREDIT = "/v1/credits/{id}"
SETTLEMENT = "/v1/settlements/{id}"  # by invoice id
# Failures are ``{"code": <status>, "error": "<why>"}``; 2xx bodies are the data.
RESPONSES = ResponseRules(code="code", message="error")


class BearerAuth(GatewayAuth):
    """``Authorization: Bearer <api key>``; the key stays a ``SecretStr`` until sent."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        yield request

    def secrets(self) -> tuple[SecretStr, ...]:
        return (self._api_key,)

    def __repr__(self) -> str:
        return "BearerAuth(api_key=***)"


class ToyClient(GatewayClient[ToyPage[Any], ToySettings]):
    """Typed, read-only access to the toy server's invoices, credits and settlements."""

    gateway = SOURCE
    responses = RESPONSES
    size_parameter = "per_page"
    max_page_size = MAX_PER_PAGE

    @classmethod
    def connection(cls, settings: ToySettings) -> Connection:
        if settings.api_key is None or settings.base_url is None:
            key, url = settings.variable("api_key"), settings.variable("base_url")
            raise ConfigError(f"invalid setting {key}: set {key} and {url}")
        return Connection(settings.base_url, BearerAuth(settings.api_key))

    def read_page(self, body: Any, feed: Feed[R], number: int, size: int) -> ToyPage[R]:
        return parse_page(body, feed.parse)

    def invoice(self, invoice_id: str) -> Invoice:
        return self.fetch_object(INVOICE, invoice_id, parse_invoice)

    def credit(self, credit_id: str) -> Credit:
        return self.fetch_object(CREDIT, credit_id, parse_credit)

    def settlement(self, invoice_id: str) -> Settlement:
        return self.fetch_object(SETTLEMENT, invoice_id, parse_settlement)
