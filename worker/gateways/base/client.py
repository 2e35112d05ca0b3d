"""The ``GatewayClient`` base: one account's calls, pages and single objects, built from settings.

One ``Caller`` over one shared ``httpx.Client``; pages of a feed one at a time, walked to the
end, or a range concurrently in order; single objects by id. A gateway's subclass adds its
endpoints, response rules, page frame and credentials. Thread-safe: one client per process and
account, shared by the worker's threads.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar
from urllib.parse import quote, urlencode

import httpx

from worker.errors import BadResponse, NotFound
from worker.gateways.base.http import Caller, GatewayAuth, Limiter, NoLimit
from worker.gateways.base.paging import Feed, Page, fetch_in_order, walk_pages
from worker.gateways.base.records import InvalidPage, R, same_object
from worker.gateways.base.responses import ResponseRules


class ClientOptions(TypedDict, total=False):
    """A client's tuning, each with the default of ``GatewayClient.__init__``."""

    source: str | None
    timeout: httpx.Timeout | None
    page_size: int
    retries: int
    max_workers: int
    limiter: Limiter | None
    sleep: Callable[[float], None]
    clock: Callable[[], datetime]
    jitter: Callable[[], float]


class ClientSettings(Protocol):
    """The values a client is built from that every gateway's account settings have."""

    @property
    def timeout_seconds(self) -> float: ...

    @property
    def max_concurrency(self) -> int: ...  # connections, and pages fetched at once

    @property
    def in_call_retries(self) -> int: ...

    @property
    def page_size(self) -> int: ...


@dataclass(frozen=True)
class Connection:
    """What a gateway reads from one account's settings to reach it."""

    base_url: str
    auth: GatewayAuth
    options: Mapping[str, Any] = field(default_factory=dict)  # the subclass's own options


PageT = TypeVar("PageT", bound=Page[Any])
SettingsT = TypeVar("SettingsT", bound=ClientSettings)


def open_http(
    base_url: str,
    *,
    timeout: httpx.Timeout,
    connections: int,
    headers: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The one ``httpx.Client`` of a process's gateway client: a pool of ``connections``."""
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers=headers,
        transport=transport,
    )


class GatewayClient(ABC, Generic[PageT, SettingsT]):
    """Typed, read-only access to one account of a gateway; ``PageT`` is its page frame and
    ``SettingsT`` its account settings.

    ``source`` names the account in errors, logs and metrics (``aurpay-eu``); it defaults to
    the gateway's name.
    """

    gateway: ClassVar[str]
    responses: ClassVar[ResponseRules]
    size_parameter: ClassVar[str]  # the query parameter of the page size, sent after ``page``
    max_page_size: ClassVar[int | None] = None  # the documented maximum, if any
    headers: ClassVar[Mapping[str, str]] = {}  # sent with every request, beside the defaults

    def __init__(
        self,
        http: httpx.Client,
        *,
        auth: GatewayAuth,
        source: str | None = None,
        timeout: httpx.Timeout | None = None,
        page_size: int = 100,
        retries: int = 3,
        max_workers: int = 4,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        most = self.max_page_size
        if page_size < 1 or (most is not None and page_size > most):
            allowed = f"1..{most}" if most is not None else "at least 1"
            raise ValueError(f"page_size must be {allowed}, got {page_size}")
        self.source = source or self.gateway
        self._auth = auth
        self._page_size = page_size
        self._max_workers = max_workers
        self._caller = Caller(
            http,
            source=self.source,
            auth=auth,
            check=self.responses.check,
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
        settings: SettingsT,
        *,
        source: str | None = None,
        limiter: Limiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> Self:
        """The client of one account (``ConfigError`` when its settings cannot reach it)."""
        connection = cls.connection(settings)
        timeout = httpx.Timeout(settings.timeout_seconds)
        headers = {
            "Accept": "application/json",
            "User-Agent": f"tally/0.1 (+{cls.gateway} client)",
            **cls.headers,
        }
        http = open_http(
            connection.base_url,
            timeout=timeout,
            connections=settings.max_concurrency,
            headers=headers,
            transport=transport,
        )
        return cls(
            http,
            auth=connection.auth,
            source=source,
            timeout=timeout,
            page_size=settings.page_size,
            retries=settings.in_call_retries,
            max_workers=settings.max_concurrency,
            limiter=limiter,
            **connection.options,
        )

    @classmethod
    @abstractmethod
    def connection(cls, settings: SettingsT) -> Connection:
        """Base URL, request signing and own options of one account; ``ConfigError`` (naming
        the variable) when a required setting is missing."""

    @abstractmethod
    def read_page(self, body: Any, feed: Feed[R], number: int, size: int) -> PageT:
        """Page ``number`` (of ``size`` items, as asked) from the checked body of a list call;
        raises ``InvalidPage`` when the frame is out of shape."""

    def __repr__(self) -> str:
        base_url = str(self._caller.http.base_url)
        name = type(self).__name__
        return f"{name}({self.source!r}, base_url={base_url!r}, auth={self._auth!r})"

    def close(self) -> None:
        self._caller.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- lists

    def fetch_page(self, feed: Feed[R], number: int, size: int | None = None) -> PageT:
        """One page of a feed; items that fail validation come back in ``page.rejected``."""
        size = size or self._page_size
        if self.max_page_size is not None:
            size = min(size, self.max_page_size)
        query = {"page": number, self.size_parameter: size}  # the order signed and sent
        body = self._caller.call("GET", feed.path, query)
        try:
            return self.read_page(body, feed, number, size)
        except InvalidPage as exc:
            target = f"{feed.path}?{urlencode(query)}"
            text = f"{self.source} GET {target}: {exc}"
            raise BadResponse(text, source=self.source, status=200) from None

    def iter_pages(self, feed: Feed[R], start: int = 1, size: int | None = None) -> Iterator[PageT]:
        """Stream pages from ``start`` to the end (``Page.is_last``)."""
        return walk_pages(lambda number: self.fetch_page(feed, number, size), start)

    def fetch_pages(
        self,
        feed: Feed[R],
        pages: Iterable[int],
        size: int | None = None,
        max_workers: int | None = None,
    ) -> Iterator[PageT]:
        """Fetch the given page numbers concurrently; yield them in the order given."""
        workers = max_workers or self._max_workers
        fetch = lambda number: self.fetch_page(feed, number, size)  # noqa: E731
        return fetch_in_order(fetch, pages, workers, f"{self.source}-page")

    # --- single objects

    def get_object(self, endpoint: str, object_id: str) -> Any:
        """The checked answer to ``GET endpoint`` for ``object_id``; ``endpoint`` ends in a
        ``{placeholder}`` for the id (``/payments/{id}``) and names the call in metrics."""
        return self._caller.call("GET", _object_path(endpoint, object_id), endpoint=endpoint)

    def fetch_object(self, endpoint: str, object_id: str, parse: Callable[[Any], R]) -> R:
        """The object ``object_id``: ``NotFound`` when unknown or the answer holds none,
        ``InvalidRecord`` when it fails validation or is another object."""
        body = self.get_object(endpoint, object_id)
        if body is None:
            path = _object_path(endpoint, object_id)
            text = f"{self.source} GET {path}: no object in the answer"
            raise NotFound(text, source=self.source, status=200)
        return same_object(parse(body), object_id)


def _object_path(endpoint: str, object_id: str) -> str:
    return endpoint[: endpoint.rindex("{")] + quote(object_id, safe="")
