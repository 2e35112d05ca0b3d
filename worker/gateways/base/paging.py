"""Paged lists, whatever the gateway: the feed, the page frame, and the two page walks.

Page by page to the end, or a range concurrently in order; neither holds more than a bounded
window of pages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ledger.model import Rejected
from worker.gateways.base.records import InvalidPage, InvalidRecord, R, json_type

P = TypeVar("P", bound="Page[Any]")
T = TypeVar("T")


@dataclass(frozen=True)
class Feed(Generic[R]):
    """A paged list endpoint and the parser of its items.

    ``parse(item, *context)`` raises ``InvalidRecord``; the context is what the gateway's items
    need beyond their JSON (Aurpay: the zone of naive times; Ebioro: nothing).
    """

    name: str
    path: str
    parse: Callable[..., R]


@dataclass(frozen=True)
class Page(ABC, Generic[R]):
    """One list page: the valid records and, apart, the items that failed validation. Each
    gateway adds its paging facts and says where its list ends."""

    records: tuple[R, ...]
    rejected: tuple[Rejected, ...]

    @property
    def empty(self) -> bool:
        return not self.records and not self.rejected

    @abstractmethod
    def is_last(self, number: int) -> bool:
        """Whether the list ends at this page, ``number`` being the page we asked for (not the
        one echoed back, so a server that echoes a wrong number cannot keep us looping)."""


DUPLICATE_ID = "duplicate id on the page"


def read_items(
    items: Iterable[Any], parse: Callable[[Any], R]
) -> tuple[tuple[R, ...], tuple[Rejected, ...]]:
    """(the items that validate, the rejects of those that do not), each in list order.

    An id seen twice on one page keeps its first valid item; the later ones are rejected as
    ``DUPLICATE_ID``. Which copy is right cannot be told, but "the first" is the same on every
    re-read of the page, so repeated syncs store one version instead of flipping between two
    (and the quarantine keeps each rejected copy once).
    """
    records: list[R] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for item in items:
        try:
            record = parse(item)
        except InvalidRecord as exc:
            rejected.append(exc.rejected)
            continue
        if record.external_id in seen:
            rejected.append(
                Rejected(record.source, record.kind, DUPLICATE_ID, record.raw, record.external_id)
            )
        else:
            seen.add(record.external_id)
            records.append(record)
    return tuple(records), tuple(rejected)


def frame_object(body: Any) -> Mapping[str, Any]:
    """A page's frame, which must be a JSON object."""
    if not isinstance(body, Mapping):
        raise InvalidPage(f"page: expected a JSON object, got {json_type(body)}")
    return body


def frame_count(frame: Mapping[str, Any], name: str, path: str = "") -> int:
    """The non-negative integer ``frame[name]`` (a page number, size or total)."""
    value = frame.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        got = json_type(value)
        raise InvalidPage(f"{path}{name}: expected a non-negative integer, got {got}")
    return value


def walk_pages(fetch: Callable[[int], P], start: int = 1) -> Iterator[P]:
    """Yield page ``start``, ``start + 1``, … until ``page.is_last(number)``."""
    number = start
    while True:
        page = fetch(number)
        yield page
        if page.is_last(number):
            return
        number += 1


def fetch_in_order(
    fetch: Callable[[int], T], numbers: Iterable[int], max_workers: int, name: str = "page"
) -> Iterator[T]:
    """Fetch ``numbers`` on up to ``max_workers`` threads; yield the pages in the given order.

    At most ``2 * max_workers`` pages are in flight or waiting, so a long range never piles up
    in memory. The first failure propagates when its page's turn comes; the pages not yet
    started are cancelled.
    """
    window: deque[Future[T]] = deque()
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
    try:
        for number in numbers:
            window.append(pool.submit(fetch, number))
            if len(window) >= 2 * max_workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
