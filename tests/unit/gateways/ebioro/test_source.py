"""EbioroSource: what the sync engine gets from each feed, single objects and follow-ups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ledger import jsonx
from ledger.model import RawRecord, Rejected, Snapshot
from tests.strategies import make_snapshot
from worker.gateways.contract import FollowUp, Source
from worker.gateways.ebioro.auth import DigestAuth
from worker.gateways.ebioro.client import EbioroClient
from worker.gateways.ebioro.source import EbioroSource

CREATED = "2024-04-26T09:47:07.333Z"


def payment(payment_id: str, status: str = "paid", **fields: Any) -> dict[str, Any]:
    base = {"id": payment_id, "status": status, "amount": {"value": 1000, "currency": "USD"},
            "createdAt": CREATED, "updatedAt": CREATED}  # fmt: skip
    return {**base, **fields}


def refund(refund_id: str, pay: dict[str, Any]) -> dict[str, Any]:
    return {"refund_id": refund_id, "status": "refunded", "payment": pay,
            "amount": {"asset_id": "USDC:GA5Z", "value": 500}}  # fmt: skip


def page(items: list[Any], total_pages: int, number: int = 1) -> httpx.Response:
    meta = {"totalItems": 250, "itemCount": len(items), "itemsPerPage": 100,
            "totalPages": total_pages, "currentPage": number}  # fmt: skip
    return httpx.Response(200, content=jsonx.dumps({"items": items, "meta": meta}).encode())


def source(handler: Any) -> EbioroSource:
    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://ebioro.test")
    client = EbioroClient(http, auth=DigestAuth("pk_test", SecretStr("sk_test")))
    return EbioroSource("ebioro", client)


class Ledger:
    """The one read follow-ups need, over a dict of stored payments."""

    def __init__(self, payments: dict[str, dict[str, Any]]) -> None:
        self.payments = payments
        self.asked: list[tuple[str, str, list[str]]] = []

    def latest_many(self, src: str, kind: str, external_ids: Sequence[str]) -> dict[str, Snapshot]:
        self.asked.append((src, kind, list(external_ids)))
        return {
            i: make_snapshot(kind, self.payments[i], source=src, external_id=i)
            for i in external_ids
            if i in self.payments
        }


def test_it_is_a_source() -> None:
    src: Source = source(lambda r: page([], 0))
    assert (src.name, src.feeds) == ("ebioro", ("payments", "refunds"))


def test_a_payments_page_carries_creation_times_and_rejects() -> None:
    items = [payment("pt_1"), payment("pt_2", createdAt=None), {"id": "pt_bad"}]
    filler = [payment(f"x{n}") for n in range(97)]  # distinct ids: a repeated one is rejected
    fetched = source(lambda r: page(items + filler, 3)).fetch_page("payments", 1)

    assert fetched.records[0] == RawRecord("ebioro", "payment", "pt_1", items[0])
    assert fetched.created[:2] == (datetime(2024, 4, 26, 9, 47, 7, 333000, tzinfo=UTC), None)
    assert len(fetched.created) == len(fetched.records) == 99
    assert [(r.kind, r.external_id) for r in fetched.rejected] == [("payment", "pt_bad")]
    assert (fetched.feed, fetched.number, fetched.max_page, fetched.total) == (
        "payments",
        1,
        3,
        250,
    )


def test_refunds_report_no_creation_time() -> None:
    items = [refund("rf_1", payment("pt_1"))]
    fetched = source(lambda r: page(items, 1)).fetch_page("refunds", 1)
    assert fetched.records == (RawRecord("ebioro", "refund", "rf_1", items[0]),)
    assert fetched.created == (None,)


@pytest.mark.parametrize(("items", "max_page"), [([payment("a")], 2), ([], 2)])
def test_a_short_or_empty_page_ends_the_feed_whatever_meta_says(
    items: list[Any], max_page: int
) -> None:
    fetched = source(lambda r: page(items, 7, 2)).fetch_page("payments", 2)
    assert fetched.max_page == max_page


def test_fetch_object_by_kind() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/payments/pt_1":
            return httpx.Response(200, content=jsonx.dumps(payment("pt_1")).encode())
        if path == "/refunds/rf_1":
            return httpx.Response(200, content=jsonx.dumps(refund("rf_1", payment("p"))).encode())
        if path == "/refunds/rf_bad":
            return httpx.Response(200, content=b'{"refund_id":"rf_bad","status":"refunded"}')
        return httpx.Response(404, content=b'{"reason":"Not found","statusCode":404}')

    src = source(handler)
    got = src.fetch_object("payment", "pt_1")
    assert isinstance(got, RawRecord) and (got.kind, got.external_id) == ("payment", "pt_1")
    got = src.fetch_object("refund", "rf_1")
    assert isinstance(got, RawRecord) and got.kind == "refund"
    bad = src.fetch_object("refund", "rf_bad")
    assert isinstance(bad, Rejected) and bad.external_id == "rf_bad"
    assert src.fetch_object("payment", "pt_missing") is None
    with pytest.raises(ValueError, match="no single-object fetch"):
        src.fetch_object("order", "x")


# --- follow-ups


def records(*refunds: dict[str, Any]) -> list[RawRecord]:
    return [RawRecord("ebioro", "refund", r["refund_id"], r) for r in refunds]


def test_a_new_refund_fetches_its_payment_when_not_stored_or_stale() -> None:
    refunded = payment("pt_stale", "refunded", refunded=True)
    batch = records(
        refund("rf_1", payment("pt_new", "refunded")),
        refund("rf_2", refunded),
        refund("rf_3", payment("pt_same", "refunded")),
        refund("rf_4", payment("pt_new", "refunded")),  # same payment twice: one follow-up
    )
    ledger = Ledger({"pt_stale": payment("pt_stale"), "pt_same": payment("pt_same", "refunded")})
    new = {("refund", r.external_id) for r in batch}

    wanted = source(None).follow_ups(batch, new, ledger, rescan=False)

    assert wanted == [FollowUp("payment", "pt_new"), FollowUp("payment", "pt_stale")]
    assert ledger.asked == [("ebioro", "payment", ["pt_new", "pt_stale", "pt_same"])]


def test_refunds_seen_before_are_followed_up_on_full_scans_only() -> None:
    batch = records(refund("rf_1", payment("pt_1", "refunded")))
    src = source(None)
    assert src.follow_ups(batch, set(), Ledger({}), rescan=False) == []
    assert src.follow_ups(batch, set(), Ledger({}), rescan=True) == [FollowUp("payment", "pt_1")]


def test_payments_need_no_follow_up() -> None:
    # A payment names none of its refunds: the refunds feed lists them (docs/gateways/ebioro.md
    # (E-EP-2)).
    batch = [RawRecord("ebioro", "payment", "pt_1", payment("pt_1", "refunded", refunded=True))]
    ledger = Ledger({})
    assert source(None).follow_ups(batch, {("payment", "pt_1")}, ledger, rescan=True) == []
    assert ledger.asked == []


def test_both_sources_are_built_side_by_side_when_configured() -> None:
    from worker.config import load_settings
    from worker.runtime import build_sources

    settings = load_settings(
        aurpay_api_key="key-0b6d8e2c4a",
        ebioro_public_key="pk_test_x",
        ebioro_secret_key="sk_test_y",
        ebioro_base_url="https://test-merchant.ebioro.com",
    )
    sources = build_sources(settings, None)
    try:
        assert sorted(sources) == ["aurpay", "ebioro"]
        assert isinstance(sources["ebioro"], EbioroSource)
        assert "sk_test_y" not in repr(sources["ebioro"])
    finally:
        for built in sources.values():
            built.close()
