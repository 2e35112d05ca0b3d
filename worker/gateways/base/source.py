"""The ``GatewaySource`` base: what every gateway's sync adapter shares, so a gateway's
``source.py`` says only what is its own (its feeds' page bounds, its single-object fetches and
its follow-ups).

Everything a source returns carries the source's name (``aurpay``, ``aurpay-eu``): payload
parsing knows only the gateway's, and the ledger, cursors, alerts and metrics are keyed by the
source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ledger.model import RawRecord, Rejected
from worker.errors import NotFound
from worker.gateways.base.paging import Feed, Page
from worker.gateways.base.records import GatewayRecord, InvalidRecord
from worker.gateways.contract import FetchedPage


class PagingClient(Protocol):
    """The client calls a source makes for itself (``GatewayClient`` has them)."""

    def fetch_page(self, feed: Feed[Any], number: int) -> Any: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=PagingClient)
# One object by id: the record, or None when the gateway has none (e.g. no refund-info yet).
ObjectFetch = Callable[[str], GatewayRecord | None]


class GatewaySource(ABC, Generic[C]):
    """A gateway account as the sync engine sees it (``worker.gateways.contract.Source``)."""

    FEEDS: ClassVar[tuple[Feed[Any], ...]]  # in the order a scan walks them
    feeds: tuple[str, ...]  # their names: what the engine schedules
    _feed_by_name: ClassVar[Mapping[str, Feed[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "FEEDS" in cls.__dict__:
            cls.feeds = tuple(feed.name for feed in cls.FEEDS)
            cls._feed_by_name = {feed.name: feed for feed in cls.FEEDS}

    def __init__(self, name: str, client: C) -> None:
        self.name = name
        self.client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.client!r})"

    @property
    def concurrency(self) -> int:
        """Requests this account may have in flight: the client's width (its settings'
        ``max_concurrency``); the sync fetches a page's follow-ups that many at a time."""
        width = getattr(self.client, "_max_workers", 4)
        return width if isinstance(width, int) else 4

    # --- what each gateway says

    @abstractmethod
    def page_bounds(self, page: Any, number: int) -> tuple[int, int]:
        """(the last page number, the total count) as page ``number`` reports them."""

    @abstractmethod
    def created_at(self, record: Any) -> datetime | None:
        """A listed record's creation time, for incremental stops (None when it has none)."""

    @abstractmethod
    def objects(self) -> Mapping[str, ObjectFetch]:
        """The single-object fetch of each kind this gateway can re-fetch by id."""

    # --- the same for every gateway

    @property
    def refetchable(self) -> frozenset[str]:
        return frozenset(self.objects())

    def own(self, item: RawRecord | Rejected) -> RawRecord | Rejected:
        """``item`` under this source's name."""
        return replace(item, source=self.name)

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        fetched: Page[Any] = self.client.fetch_page(self._feed_by_name[feed], page)
        last, total = self.page_bounds(fetched, page)
        return FetchedPage(
            feed=feed,
            number=page,
            max_page=last,
            total=total,
            records=tuple(replace(r.to_raw_record(), source=self.name) for r in fetched.records),
            created=tuple(self.created_at(r) for r in fetched.records),
            rejected=tuple(replace(r, source=self.name) for r in fetched.rejected),
        )

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        fetch = self.objects().get(kind)
        if fetch is None:
            raise ValueError(f"{self.name} has no single-object fetch for kind {kind!r}")
        try:
            record = fetch(external_id)
        except InvalidRecord as exc:
            return self.own(exc.rejected)
        except NotFound:
            return None
        return self.own(record.to_raw_record()) if record is not None else None

    def close(self) -> None:
        self.client.close()
