"""Toy's paged lists (``GET /v1/invoices``, ``GET /v1/credits``): newest first, ``page`` and
``per_page`` in the query, ``{items, page, per_page, pages, total}`` in the answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.gateways.toy.payloads import Credit, Invoice, parse_credit, parse_invoice
from worker.gateways.base.paging import Feed, Page, frame_count, frame_object, read_items
from worker.gateways.base.records import InvalidPage, R, json_type

MAX_PER_PAGE = 100

INVOICES: Feed[Invoice] = Feed("invoices", "/v1/invoices", parse_invoice)
CREDITS: Feed[Credit] = Feed("credits", "/v1/credits", parse_credit)


@dataclass(frozen=True)
class ToyPage(Page[R]):
    """One list page and the page count the server reports."""

    pages: int
    total: int

    def is_last(self, number: int) -> bool:
        return self.empty or number >= self.pages


def parse_page(body: Any, parse_item: Callable[[Any], R]) -> ToyPage[R]:
    """A list answer; items that fail validation become ``Rejected``."""
    frame = frame_object(body)
    items = frame.get("items")
    if not isinstance(items, list):
        raise InvalidPage(f"items: expected an array, got {json_type(items)}")
    records, rejected = read_items(items, parse_item)
    return ToyPage(
        records=records,
        rejected=rejected,
        pages=frame_count(frame, "pages"),
        total=frame_count(frame, "total"),
    )
