"""Aurpay's paged feeds and how to walk them: page by page to the end, or a range concurrently.

The walks are generic over how one page is fetched (``fetch(number) -> Page``), so orders and
transactions share one implementation. Neither holds more than a bounded window of pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Generic, TypeVar

from worker.gateways import base
from worker.gateways.aurpay.payloads import (
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
    move while we walk.
    """
    return base.walk_pages(fetch, lambda page, number: page.empty or number >= page.max_page, start)


def fetch_in_order(
    fetch: Callable[[int], P], numbers: Iterable[int], max_workers: int
) -> Iterator[P]:
    """``base.fetch_in_order`` on threads named ``aurpay-page``."""
    return base.fetch_in_order(fetch, numbers, max_workers, "aurpay-page")
