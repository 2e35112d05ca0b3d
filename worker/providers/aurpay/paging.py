"""Aurpay's paged feeds and how to walk them: page by page to the end, or a range concurrently.

The walks are generic over how one page is fetched (``fetch(number) -> Page``), so orders and
transactions share one implementation. Neither holds more than a bounded window of pages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Generic, TypeVar

from worker.providers.aurpay.payloads import (
    Order,
    Page,
    R,
    Transaction,
    parse_order,
    parse_transaction,
)

P = TypeVar("P", bound=Page[Any])


@dataclass(frozen=True)
class Feed(Generic[R]):
    """A paged list endpoint and the parser of its items."""

    name: str
    path: str
    parse: Callable[[Any, tzinfo], R]


ORDERS: Feed[Order] = Feed("orders", "/api/v2/order/", parse_order)  # trailing slash documented
TRANSACTIONS: Feed[Transaction] = Feed("transactions", "/api/v2/tx", parse_transaction)


def walk_pages(fetch: Callable[[int], P], start: int = 1) -> Iterator[P]:
    """Yield page ``start``, ``start + 1``, … until the last page or an empty one.

    ``max_page`` is re-read from every page: offset paging without a cursor lets ``total``
    move while we walk. The stop test uses the page number we asked for, not the one echoed
    back, so a server that echoes a wrong number cannot keep us looping.
    """
    number = start
    while True:
        page = fetch(number)
        yield page
        if page.empty or number >= page.max_page:
            return
        number += 1


def fetch_in_order(
    fetch: Callable[[int], P], numbers: Iterable[int], max_workers: int
) -> Iterator[P]:
    """Fetch ``numbers`` on up to ``max_workers`` threads; yield the pages in the given order.

    At most ``2 * max_workers`` pages are in flight or waiting, so a long range never piles up
    in memory. The first failure propagates when its page's turn comes; the pages not yet
    started are cancelled.
    """
    window: deque[Future[P]] = deque()
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aurpay-page")
    try:
        for number in numbers:
            window.append(pool.submit(fetch, number))
            if len(window) >= 2 * max_workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
