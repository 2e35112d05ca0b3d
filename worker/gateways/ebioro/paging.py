"""Ebioro's paged lists (``GET /payments``, ``GET /refunds``): the page frame and its end.

Offset paging with ``page`` (1-based) and ``limit`` (≤ 100); each response has ``items`` and a
``meta`` object {totalItems, itemCount, itemsPerPage, totalPages, currentPage}
(docs/gateways/ebioro.md (E-PAGE-2)).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.gateways.base.paging import Feed as Feed  # the feeds' type, for the source
from worker.gateways.base.paging import Page, frame_count, frame_object, read_items
from worker.gateways.base.records import InvalidPage, R, json_type
from worker.gateways.ebioro.payloads import Payment, Refund, parse_payment, parse_refund

MAX_LIMIT = 100  # documented maximum of ``limit``

PAYMENTS: Feed[Payment] = Feed("payments", "/payments", parse_payment)
REFUNDS: Feed[Refund] = Feed("refunds", "/refunds", parse_refund)


@dataclass(frozen=True)
class EbioroPage(Page[R]):
    """One list page with what we asked for and the paging facts of ``meta``."""

    number: int  # the page we asked for
    limit: int  # the page size we asked for
    total_items: int
    total_pages: int
    current_page: int
    items_per_page: int | None

    def is_last(self, number: int) -> bool:
        """Stop after page ``number``: empty, at ``totalPages``, or shorter than a full page
        (docs/gateways/ebioro.md (E-PAGE-3): the end condition is inferred, so every signal ends
        the walk)."""
        full = min(self.limit, self.items_per_page or self.limit)
        count = len(self.records) + len(self.rejected)
        return self.empty or number >= self.total_pages or count < full


def parse_page(body: Any, parse_item: Callable[[Any], R], number: int, limit: int) -> EbioroPage[R]:
    """Parse a list response (``items`` + ``meta``, docs/gateways/ebioro.md (E-PAGE-2)); bad items
    become ``Rejected``."""
    frame = frame_object(body)
    items = frame.get("items")
    if not isinstance(items, list):
        raise InvalidPage(f"items: expected an array, got {json_type(items)}")
    meta = frame.get("meta")
    if not isinstance(meta, Mapping):
        raise InvalidPage(f"meta: expected an object, got {json_type(meta)}")
    records, rejected = read_items(items, parse_item)
    sent = meta.get("itemsPerPage") is not None  # optional
    per_page = frame_count(meta, "itemsPerPage", "meta.") if sent else None
    return EbioroPage(
        records=records,
        rejected=rejected,
        number=number,
        limit=limit,
        total_items=frame_count(meta, "totalItems", "meta."),
        total_pages=frame_count(meta, "totalPages", "meta."),
        current_page=frame_count(meta, "currentPage", "meta."),
        items_per_page=per_page or None,  # 0 says nothing about the page size
    )
