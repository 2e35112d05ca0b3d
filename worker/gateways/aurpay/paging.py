"""Aurpay's paged feeds (orders, transactions) and their page frame.

The envelope's ``data`` holds {page, size, total, max_page, data: [items]}; the list ends at
``max_page`` or an empty page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from worker.gateways.aurpay.payloads import Order, Transaction, parse_order, parse_transaction
from worker.gateways.base.paging import Feed as Feed  # the feeds' type, for the source
from worker.gateways.base.paging import Page, frame_count, frame_object, read_items
from worker.gateways.base.records import InvalidPage, R, json_type

ORDERS: Feed[Order] = Feed("orders", "/api/v2/order/", parse_order)  # trailing slash documented
TRANSACTIONS: Feed[Transaction] = Feed("transactions", "/api/v2/tx", parse_transaction)
FIELD = "page field "  # how messages name a field of the frame


@dataclass(frozen=True)
class AurpayPage(Page[R]):
    """One list page with the paging facts Aurpay echoes back."""

    page: int
    size: int
    total: int
    max_page: int

    def is_last(self, number: int) -> bool:
        # ``max_page`` is re-read from every page: offset paging without a cursor lets
        # ``total`` move while we walk.
        return self.empty or number >= self.max_page


def parse_page(
    data: Any, parse_item: Callable[[Any, tzinfo], R], naive_tz: tzinfo = UTC
) -> AurpayPage[R]:
    """Parse the envelope's ``data`` of a list endpoint; bad items become ``Rejected``."""
    frame = frame_object(data)
    items = frame.get("data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InvalidPage(f"{FIELD}data: expected an array, got {json_type(items)}")
    records, rejected = read_items(items, lambda item: parse_item(item, naive_tz))
    return AurpayPage(
        records=records,
        rejected=rejected,
        page=frame_count(frame, "page", FIELD),
        size=frame_count(frame, "size", FIELD),
        total=frame_count(frame, "total", FIELD),
        max_page=frame_count(frame, "max_page", FIELD),
    )
