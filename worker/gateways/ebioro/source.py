"""Ebioro as a sync ``Source``: the payments and refunds feeds, single objects and follow-ups.

Refunds of refunded payments come from the refunds feed: a payment names none of its refunds
and no ``GET /payments/{id}/refunds`` is documented (ebioro-api.md §4, §5.2). Refunds carry
no timestamp of their own (§5.4), so their pages report no creation times and every
incremental run lists them all; payments report ``createdAt`` and stop early as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger.model import RawRecord, Rejected
from worker.errors import NotFound
from worker.gateways.contract import FetchedPage, FollowUp, LatestLookup
from worker.gateways.ebioro.client import EbioroClient
from worker.gateways.ebioro.paging import PAYMENTS, REFUNDS, Feed
from worker.gateways.ebioro.payloads import SOURCE, InvalidRecord, Payment

FEEDS: dict[str, Feed[Any]] = {PAYMENTS.name: PAYMENTS, REFUNDS.name: REFUNDS}
# The payment fields a refund changes; the embedded copy differing from the stored payment in
# any of them means the stored one is stale.
PAYMENT_STATE = ("status", "settlement_status", "refunded", "amount_paid", "updatedAt")


def embedded_payment(refund: Mapping[str, Any]) -> Mapping[str, Any]:
    payment = refund.get("payment")
    return payment if isinstance(payment, Mapping) else {}


def _state(payment: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(payment.get(name) for name in PAYMENT_STATE)


class EbioroSource:
    """Adapts ``EbioroClient`` to the sync engine's ``Source`` protocol."""

    name = SOURCE
    feeds = (PAYMENTS.name, REFUNDS.name)

    def __init__(self, client: EbioroClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"EbioroSource({self.client!r})"

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        fetched = self.client.fetch_page(FEEDS[feed], page)
        records = tuple(r.to_raw_record() for r in fetched.records)
        created = tuple(r.created_at if isinstance(r, Payment) else None for r in fetched.records)
        # A short or empty page ends the list even if totalPages says more (§6: both signals).
        last = fetched.total_pages
        if fetched.is_last(page):
            last = min(last, page)
        return FetchedPage(
            feed=feed,
            number=page,
            max_page=last,
            total=fetched.total_items,
            records=records,
            created=created,
            rejected=fetched.rejected,
        )

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        try:
            if kind == "payment":
                return self.client.payment(external_id).to_raw_record()
            if kind == "refund":
                return self.client.refund(external_id).to_raw_record()
        except InvalidRecord as exc:
            return exc.rejected
        except NotFound:
            return None
        raise ValueError(f"ebioro has no single-object fetch for kind {kind!r}")

    def follow_ups(
        self,
        records: Sequence[RawRecord],
        new_keys: set[tuple[str, str]],
        ledger: LatestLookup,
        *,
        rescan: bool,
    ) -> Sequence[FollowUp]:
        """The payment of each refund, when the stored payment is missing or older than the copy
        embedded in the refund (a refund changes its payment's status): for refunds that made a
        new version, and on full scans for every refund seen."""
        embedded: dict[str, Mapping[str, Any]] = {}
        for record in records:
            if record.kind != "refund" or not (
                rescan or ("refund", record.external_id) in new_keys
            ):
                continue
            payment = embedded_payment(record.payload)
            payment_id = payment.get("id")
            if isinstance(payment_id, str) and payment_id:
                embedded[payment_id] = payment
        if not embedded:
            return []
        stored = ledger.latest_many(SOURCE, "payment", list(embedded))
        return [
            FollowUp("payment", payment_id)
            for payment_id, payment in embedded.items()
            if payment_id not in stored or _state(stored[payment_id].payload) != _state(payment)
        ]

    def close(self) -> None:
        self.client.close()
