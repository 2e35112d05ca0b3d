"""Ebioro's paged lists (``GET /payments``, ``GET /refunds``): the page frame and its end.

Offset paging with ``page`` (1-based) and ``limit`` (≤ 100); each response has ``items`` and a
``meta`` object {totalItems, itemCount, itemsPerPage, totalPages, currentPage} (ebioro-api.md §6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic

from ledger.model import Rejected
from worker.gateways.base import json_type
from worker.gateways.ebioro.payloads import (
    InvalidRecord,
    Payment,
    R,
    Refund,
    parse_payment,
    parse_refund,
)

MAX_LIMIT = 100  # documented maximum of ``limit``


class InvalidPage(ValueError):
    """A list response whose frame (``items``, ``meta``) is not the documented shape."""


@dataclass(frozen=True)
class Feed(Generic[R]):
    """A paged list endpoint and the parser of its items."""

    name: str
    path: str
    parse: Callable[[Any], R]


PAYMENTS: Feed[Payment] = Feed("payments", "/payments", parse_payment)
REFUNDS: Feed[Refund] = Feed("refunds", "/refunds", parse_refund)


@dataclass(frozen=True)
class Page(Generic[R]):
    """One list page: the valid records and, apart, the items that failed validation."""

    number: int  # the page we asked for
    limit: int  # the page size we asked for
    total_items: int
    total_pages: int
    current_page: int
    items_per_page: int | None
    records: tuple[R, ...]
    rejected: tuple[Rejected, ...]

    @property
    def empty(self) -> bool:
        return not self.records and not self.rejected

    def is_last(self, number: int) -> bool:
        """Stop after page ``number``: empty, at ``totalPages``, or shorter than a full page
        (§6: the end condition is inferred, so every signal ends the walk)."""
        full = min(self.limit, self.items_per_page or self.limit)
        count = len(self.records) + len(self.rejected)
        return self.empty or number >= self.total_pages or count < full


def _meta_int(meta: Mapping[str, Any], name: str, required: bool = True) -> Any:
    value = meta.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidPage(f"meta.{name}: expected a non-negative integer, got {json_type(value)}")
    return value


def parse_page(body: Any, parse_item: Callable[[Any], R], number: int, limit: int) -> Page[R]:
    """Parse a list response (``items`` + ``meta``, §6); bad items become ``Rejected``."""
    if not isinstance(body, Mapping):
        raise InvalidPage(f"page: expected a JSON object, got {json_type(body)}")
    items = body.get("items")
    if not isinstance(items, list):
        raise InvalidPage(f"items: expected an array, got {json_type(items)}")
    meta = body.get("meta")
    if not isinstance(meta, Mapping):
        raise InvalidPage(f"meta: expected an object, got {json_type(meta)}")
    records: list[R] = []
    rejected: list[Rejected] = []
    for item in items:
        try:
            records.append(parse_item(item))
        except InvalidRecord as exc:
            rejected.append(exc.rejected)
    return Page(
        number=number,
        limit=limit,
        total_items=_meta_int(meta, "totalItems"),
        total_pages=_meta_int(meta, "totalPages"),
        current_page=_meta_int(meta, "currentPage"),
        items_per_page=_meta_int(meta, "itemsPerPage", required=False) or None,
        records=tuple(records),
        rejected=tuple(rejected),
    )
