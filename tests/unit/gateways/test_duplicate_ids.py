"""The same id twice on one page: the first valid copy is kept, every later one is rejected as
"duplicate id on the page", the same way on every re-read (both gateways' pages)."""

from __future__ import annotations

from typing import Any

from ledger import jsonx
from worker.gateways.aurpay import paging as aurpay_paging
from worker.gateways.aurpay.payloads import parse_order
from worker.gateways.base.paging import DUPLICATE_ID
from worker.gateways.ebioro import paging as ebioro_paging
from worker.gateways.ebioro.payloads import parse_payment

ORDER: dict[str, Any] = {"order_id": "7", "status": "SUCCESS", "currency": "BTC", "amount": "1"}


def aurpay_page(items: list[Any]) -> Any:
    frame = {"page": 1, "size": 100, "total": len(items), "max_page": 1, "data": items}
    return aurpay_paging.parse_page(jsonx.loads(jsonx.dumps(frame)), parse_order)


def test_the_first_copy_is_kept_and_the_others_are_rejected() -> None:
    first, second, third = ({**ORDER, "amount": amount} for amount in ("1", "2", "3"))
    items = [first, {**ORDER, "order_id": "8"}, second, third]

    for _ in range(3):  # the same page read again chooses the same copy
        page = aurpay_page(items)
        assert [(o.order_id, o.amount) for o in page.records] == [("7", 1), ("8", 1)]
        assert [(r.reason, r.external_id, r.raw) for r in page.rejected] == [
            (DUPLICATE_ID, "7", second),
            (DUPLICATE_ID, "7", third),
        ]


def test_an_invalid_first_copy_leaves_the_valid_one() -> None:
    broken = {**ORDER, "amount": "1_0"}
    page = aurpay_page([broken, ORDER])
    assert [o.amount for o in page.records] == [1]
    assert "amount: not a decimal amount" in page.rejected[0].reason


def test_ebioro_pages_resolve_duplicates_the_same_way() -> None:
    payment = {"id": "pt_1", "status": "paid", "amount": {"value": 1000, "currency": "USD"}}
    later = {**payment, "status": "refunded"}
    body = {
        "items": [payment, later],
        "meta": {"totalItems": 2, "totalPages": 1, "currentPage": 1, "itemsPerPage": 10},
    }

    page = ebioro_paging.parse_page(jsonx.loads(jsonx.dumps(body)), parse_payment, 1, 10)

    assert [p.status for p in page.records] == ["paid"]
    assert [(r.reason, r.external_id) for r in page.rejected] == [(DUPLICATE_ID, "pt_1")]
    assert page.is_last(1)  # a rejected copy still counts as an item of the page
