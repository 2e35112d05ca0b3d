"""Ebioro read-only API client: digest-signed GETs over one shared ``httpx.Client``, typed results.

``responses.check_response`` turns each response into data or a ``worker.errors`` exception;
transient failures get a short bounded in-call retry, then propagate to the caller's retry tier.
Thread-safe: one client per process, shared by the worker's threads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import httpx

from ledger.model import Rejected
from worker.config import EBIORO_HOSTS, Settings
from worker.errors import BadResponse, ConfigError
from worker.gateways.base import Caller, Limiter, NoLimit, fetch_in_order, walk_pages
from worker.gateways.ebioro.auth import DigestAuth
from worker.gateways.ebioro.paging import (
    MAX_LIMIT,
    PAYMENTS,
    REFUNDS,
    Feed,
    InvalidPage,
    Page,
    parse_page,
)
from worker.gateways.ebioro.payloads import (
    SOURCE,
    InvalidRecord,
    Payment,
    R,
    Refund,
    parse_payment,
    parse_refund,
)
from worker.gateways.ebioro.responses import check_response

USER_AGENT = "tally/0.1 (+ebioro client)"


class EbioroClient:
    """Typed, read-only access to Ebioro's payments and refunds (lists and single objects)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        auth: DigestAuth,
        timeout: httpx.Timeout | None = None,
        page_size: int = MAX_LIMIT,
        retries: int = 3,
        max_workers: int = 4,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not 1 <= page_size <= MAX_LIMIT:
            raise ValueError(f"page_size must be 1..{MAX_LIMIT}, got {page_size}")
        self._auth = auth
        self._page_size = page_size
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
    ) -> EbioroClient:
        """Build the process's client from ``EBIORO_*`` settings (keys and base URL required)."""
        public_key, secret_key = settings.ebioro_public_key, settings.ebioro_secret_key
        if not public_key or secret_key is None:
            raise ConfigError(
                "invalid setting EBIORO_SECRET_KEY: set EBIORO_PUBLIC_KEY and EBIORO_SECRET_KEY"
            )
        if settings.ebioro_base_url is None:
            raise ConfigError(f"invalid setting EBIORO_BASE_URL: required ({EBIORO_HOSTS})")
        timeout = httpx.Timeout(settings.ebioro_timeout_seconds)
        size = settings.ebioro_max_concurrency
        http = httpx.Client(
            base_url=settings.ebioro_base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            # Every provider client sends Content-Type: application/json, GETs included (§3.1).
            headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            transport=transport,
        )
        return cls(
            http,
            auth=DigestAuth(public_key, secret_key),
            timeout=timeout,
            page_size=settings.ebioro_page_size,
            retries=settings.ebioro_in_call_retries,
            max_workers=size,
            limiter=limiter,
        )

    def __repr__(self) -> str:
        return f"EbioroClient(base_url={str(self._caller.http.base_url)!r}, auth={self._auth!r})"

    def close(self) -> None:
        self._caller.http.close()

    def __enter__(self) -> EbioroClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- lists

    def fetch_page(self, feed: Feed[R], number: int, limit: int | None = None) -> Page[R]:
        """One page of a feed; items that fail validation come back in ``page.rejected``."""
        size = min(limit or self._page_size, MAX_LIMIT)
        query = {"page": number, "limit": size}  # this order is what gets signed and sent
        body = self._caller.call("GET", feed.path, query)
        try:
            return parse_page(body, feed.parse, number, size)
        except InvalidPage as exc:
            target = f"{feed.path}?{urlencode(query)}"
            raise BadResponse(f"ebioro GET {target}: {exc}", source=SOURCE, status=200) from None

    def iter_pages(
        self, feed: Feed[R], start: int = 1, limit: int | None = None
    ) -> Iterator[Page[R]]:
        """Stream pages from ``start`` to the end (``Page.is_last``)."""
        return walk_pages(
            lambda number: self.fetch_page(feed, number, limit),
            lambda page, number: page.is_last(number),
            start,
        )

    def fetch_pages(
        self,
        feed: Feed[R],
        pages: Iterable[int],
        limit: int | None = None,
        max_workers: int | None = None,
    ) -> Iterator[Page[R]]:
        """Fetch the given page numbers concurrently; yield them in the order given."""
        workers = max_workers or self._max_workers
        fetch = lambda number: self.fetch_page(feed, number, limit)  # noqa: E731
        return fetch_in_order(fetch, pages, workers, "ebioro-page")

    def iter_payment_pages(
        self, start: int = 1, limit: int | None = None
    ) -> Iterator[Page[Payment]]:
        return self.iter_pages(PAYMENTS, start, limit)

    def iter_refund_pages(self, start: int = 1, limit: int | None = None) -> Iterator[Page[Refund]]:
        return self.iter_pages(REFUNDS, start, limit)

    # --- single objects

    def payment(self, payment_id: str) -> Payment:
        """``GET /payments/{id}``; ``NotFound`` if unknown, ``InvalidRecord`` if malformed."""
        path = f"/payments/{quote(payment_id, safe='')}"
        body = self._caller.call("GET", path, endpoint="/payments/{id}")
        return _same_id(parse_payment(body), payment_id, "payment", "payment_id")

    def refund(self, refund_id: str) -> Refund:
        """``GET /refunds/{id}``; ``NotFound`` if unknown, ``InvalidRecord`` if malformed."""
        path = f"/refunds/{quote(refund_id, safe='')}"
        body = self._caller.call("GET", path, endpoint="/refunds/{id}")
        return _same_id(parse_refund(body), refund_id, "refund", "refund_id")


def _same_id(record: R, wanted: str, kind: str, attribute: str) -> R:
    """A single-object answer must be about the object we asked for."""
    got = getattr(record, attribute)
    if got != wanted:
        reason = f"id {got!r} does not match the requested {wanted!r}"
        raise InvalidRecord(Rejected(SOURCE, kind, reason, record.raw, wanted))
    return record
