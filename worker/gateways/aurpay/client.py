"""Aurpay read-only API client: signed GETs over one shared ``httpx.Client``, typed results.

``responses.check_response`` turns each response into data or a ``worker.errors`` exception;
transient failures get a short bounded in-call retry, then propagate to the caller's retry tier.
Thread-safe: one client per process, shared by the worker's threads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import httpx

from ledger.model import Rejected
from worker.errors import BadResponse, ConfigError, NotFound
from worker.gateways.aurpay.auth import ApiKeyAuth, SignatureAuth
from worker.gateways.aurpay.paging import (
    ORDERS,
    TRANSACTIONS,
    Feed,
    fetch_in_order,
    walk_pages,
)
from worker.gateways.aurpay.payloads import (
    SOURCE,
    InvalidPage,
    InvalidRecord,
    Order,
    Page,
    R,
    RefundInfo,
    Transaction,
    parse_order,
    parse_page,
    parse_refund_info,
)
from worker.gateways.aurpay.responses import check_response
from worker.gateways.base import Caller, Limiter, NoLimit

if TYPE_CHECKING:
    from worker.config import Settings

USER_AGENT = "tally/0.1 (+aurpay client)"


class AurpayClient:
    """Typed, read-only access to Aurpay's orders, order details, refund info and transactions."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        auth: ApiKeyAuth | SignatureAuth,
        timeout: httpx.Timeout | None = None,
        page_size: int = 100,
        naive_tz: tzinfo = UTC,
        retries: int = 3,
        max_workers: int = 4,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._auth = auth
        self._page_size = page_size
        self._naive_tz = naive_tz
        self._max_workers = max_workers
        self._caller = Caller(
            http,
            source=SOURCE,
            auth=auth,
            secrets=auth.secrets(),
            check=check_response,
            timeout=timeout or httpx.Timeout(10.0),
            retries=retries,
            limiter=limiter or NoLimit(),
            sleep=sleep,
            clock=clock,
            jitter=jitter,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        limiter: Limiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> AurpayClient:
        """Build the process's client; the signature method wins when token and secret are set."""
        auth: ApiKeyAuth | SignatureAuth
        if settings.aurpay_api_token is not None and settings.aurpay_api_secret is not None:
            auth = SignatureAuth(
                settings.aurpay_api_token,
                settings.aurpay_api_secret,
                sign_query=settings.aurpay_sign_query,
            )
        elif settings.aurpay_api_key is not None:
            auth = ApiKeyAuth(settings.aurpay_api_key)
        else:
            raise ConfigError(
                "invalid setting AURPAY_API_KEY: set it, or AURPAY_API_TOKEN and AURPAY_API_SECRET"
            )
        timeout = httpx.Timeout(settings.aurpay_timeout_seconds)
        size = settings.aurpay_max_concurrency
        http = httpx.Client(
            base_url=settings.aurpay_base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            transport=transport,
        )
        return cls(
            http,
            auth=auth,
            timeout=timeout,
            page_size=settings.aurpay_page_size,
            naive_tz=ZoneInfo(settings.aurpay_naive_timezone),
            retries=settings.aurpay_in_call_retries,
            max_workers=size,
            limiter=limiter,
        )

    def __repr__(self) -> str:
        return f"AurpayClient(base_url={str(self._caller.http.base_url)!r}, auth={self._auth!r})"

    def close(self) -> None:
        self._caller.http.close()

    def __enter__(self) -> AurpayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- endpoints

    def fetch_page(self, feed: Feed[R], number: int, size: int | None = None) -> Page[R]:
        """One page of a feed; items that fail validation come back in ``page.rejected``."""
        query = {"page": number, "size": size or self._page_size}
        data = self._caller.call("GET", feed.path, query)
        try:
            return parse_page(data, feed.parse, self._naive_tz)
        except InvalidPage as exc:
            target = f"{feed.path}?{urlencode(query)}"
            raise BadResponse(f"aurpay GET {target}: {exc}", source=SOURCE, status=200) from None

    def iter_pages(
        self, feed: Feed[R], start: int = 1, size: int | None = None
    ) -> Iterator[Page[R]]:
        """Stream pages from ``start`` to the end (see ``paging.walk_pages``)."""
        return walk_pages(lambda number: self.fetch_page(feed, number, size), start)

    def fetch_pages(
        self,
        feed: Feed[R],
        pages: Iterable[int],
        size: int | None = None,
        max_workers: int | None = None,
    ) -> Iterator[Page[R]]:
        """Fetch the given page numbers concurrently; yield them in the order given."""
        workers = max_workers or self._max_workers
        return fetch_in_order(lambda number: self.fetch_page(feed, number, size), pages, workers)

    def iter_order_pages(self, start: int = 1, size: int | None = None) -> Iterator[Page[Order]]:
        return self.iter_pages(ORDERS, start, size)

    def iter_transaction_pages(
        self, start: int = 1, size: int | None = None
    ) -> Iterator[Page[Transaction]]:
        return self.iter_pages(TRANSACTIONS, start, size)

    def fetch_order_pages(
        self, pages: Iterable[int], size: int | None = None, max_workers: int | None = None
    ) -> Iterator[Page[Order]]:
        return self.fetch_pages(ORDERS, pages, size, max_workers)

    def fetch_transaction_pages(
        self, pages: Iterable[int], size: int | None = None, max_workers: int | None = None
    ) -> Iterator[Page[Transaction]]:
        return self.fetch_pages(TRANSACTIONS, pages, size, max_workers)

    def order_detail(self, order_id: str) -> Order:
        """The full order; ``NotFound`` if unknown, ``InvalidRecord`` if it fails validation."""
        path = f"/api/v2/order/detail/{quote(order_id, safe='')}"
        data = self._caller.call("GET", path, endpoint="/api/v2/order/detail/{order_id}")
        if data is None:
            raise NotFound(f"aurpay GET {path}: no order data", source=SOURCE, status=200)
        return _same_order(parse_order(data, self._naive_tz), order_id, "order")

    def refund_info(self, order_id: str) -> RefundInfo | None:
        """The order's refund info, or None when Aurpay has none (404 or empty ``data``)."""
        try:
            path = f"/api/v2/order/refund-info/{quote(order_id, safe='')}"
            data = self._caller.call("GET", path, endpoint="/api/v2/order/refund-info/{order_id}")
        except NotFound:
            return None
        if data is None or data == {}:
            return None
        return _same_order(parse_refund_info(data, self._naive_tz), order_id, "refund")


def _same_order(record: R, order_id: str, kind: str) -> R:
    """A single-object answer must be about the order we asked for."""
    if record.order_id != order_id:
        reason = f"order_id {record.order_id!r} does not match the requested {order_id!r}"
        raise InvalidRecord(Rejected(SOURCE, kind, reason, record.raw, order_id))
    return record
