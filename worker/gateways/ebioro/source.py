"""Ebioro as a sync ``Source``: the payments and refunds feeds, single objects and follow-ups.

Refunds of refunded payments come from the refunds feed: a payment names none of its refunds
and no ``GET /payments/{id}/refunds`` is documented (docs/gateways/ebioro.md (E-EP-2)). Refunds
carry
no timestamp of their own (docs/gateways/ebioro.md (E-REF-2)), so their pages report no creation
times and every
incremental run lists them all; payments report ``createdAt`` and stop early as usual.
One ``EbioroSource`` per account: everything it returns carries the source's name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ledger.model import RawRecord, Rejected
from ledger.timeparse import first_timestamp
from worker.errors import NotFound
from worker.gateways.base.http import Limiter
from worker.gateways.contract import (
    FetchedPage,
    FollowUp,
    FollowUpLedger,
    LatestLookup,
    PendingFollowUp,
)
from worker.gateways.ebioro.client import EbioroClient
from worker.gateways.ebioro.paging import PAYMENTS, REFUNDS, Feed
from worker.gateways.ebioro.payloads import InvalidRecord, Payment
from worker.gateways.ebioro.settings import EbioroSettings

FEEDS: dict[str, Feed[Any]] = {PAYMENTS.name: PAYMENTS, REFUNDS.name: REFUNDS}
# The payment fields a refund changes; the embedded copy differing from the stored payment in
# any of them means the stored one is stale.
PAYMENT_STATE = ("status", "settlement_status", "refunded", "amount_paid", "updatedAt")


def embedded_payment(refund: Mapping[str, Any]) -> Mapping[str, Any]:
    payment = refund.get("payment")
    return payment if isinstance(payment, Mapping) else {}


def _state(payment: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(payment.get(name) for name in PAYMENT_STATE)


def _behind(stored: Mapping[str, Any], embedded: Mapping[str, Any]) -> bool:
    """The stored payment differs from a refund's copy and is not the later of the two (a
    payment updated after its refund differs for good, and asking again changes nothing)."""
    if _state(stored) == _state(embedded):
        return False
    ours, theirs = first_timestamp(stored, "updatedAt"), first_timestamp(embedded, "updatedAt")
    return ours is None or theirs is None or ours <= theirs


class EbioroSource:
    """Adapts ``EbioroClient`` to the sync engine's ``Source`` protocol for source ``name``."""

    feeds: tuple[str, ...] = (PAYMENTS.name, REFUNDS.name)

    def __init__(self, name: str, client: EbioroClient) -> None:
        self.name = name
        self.client = client

    def __repr__(self) -> str:
        return f"EbioroSource({self.name!r}, {self.client!r})"

    def _own(self, item: RawRecord | Rejected) -> RawRecord | Rejected:
        """``item`` under this source's name (payload parsing knows only the gateway's)."""
        return replace(item, source=self.name)

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        fetched = self.client.fetch_page(FEEDS[feed], page)
        records = tuple(replace(r.to_raw_record(), source=self.name) for r in fetched.records)
        created = tuple(r.created_at if isinstance(r, Payment) else None for r in fetched.records)
        # A short or empty page ends the list even if totalPages says more (docs/gateways/ebioro.md
        # (E-PAGE-3): both signals).
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
            rejected=tuple(replace(r, source=self.name) for r in fetched.rejected),
        )

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        try:
            if kind == "payment":
                return self._own(self.client.payment(external_id).to_raw_record())
            if kind == "refund":
                return self._own(self.client.refund(external_id).to_raw_record())
        except InvalidRecord as exc:
            return self._own(exc.rejected)
        except NotFound:
            return None
        raise ValueError(f"{self.name} has no single-object fetch for kind {kind!r}")

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
        stored = ledger.latest_many(self.name, "payment", list(embedded))
        return [
            FollowUp("payment", payment_id)
            for payment_id, payment in embedded.items()
            if payment_id not in stored or _state(stored[payment_id].payload) != _state(payment)
        ]

    def pending_follow_ups(
        self, ledger: FollowUpLedger, since_seq: int = 0
    ) -> Iterator[PendingFollowUp]:
        """The payment of each refund stored after ``since_seq`` when the stored payment is
        missing or behind the copy the refund embeds (the latest refund of a payment decides)."""
        embedded: dict[str, tuple[Mapping[str, Any], int]] = {}
        for refund in ledger.iter_latest_since(self.name, "refund", since_seq):
            payment = embedded_payment(refund.payload)
            payment_id = payment.get("id")
            if isinstance(payment_id, str) and payment_id:
                embedded[payment_id] = (payment, refund.seq)  # seq order: the latest wins
        stored = ledger.latest_many(self.name, "payment", list(embedded)) if embedded else {}
        for payment_id, (payment, seq) in embedded.items():
            if payment_id not in stored or _behind(stored[payment_id].payload, payment):
                yield PendingFollowUp(FollowUp("payment", payment_id), seq)

    def close(self) -> None:
        self.client.close()


def build_source(name: str, settings: EbioroSettings, limiter: Limiter) -> EbioroSource:
    """The source ``name`` over one account's client (paced by the process's ``limiter``)."""
    return EbioroSource(name, EbioroClient.from_settings(settings, source=name, limiter=limiter))
