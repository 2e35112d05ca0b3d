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
from datetime import datetime
from typing import Any

from ledger.model import RawRecord
from ledger.timeparse import first_timestamp
from worker.gateways.base.http import Limiter
from worker.gateways.base.source import GatewaySource, ObjectFetch
from worker.gateways.contract import (
    FollowUp,
    FollowUpLedger,
    LatestLookup,
    PendingFollowUp,
)
from worker.gateways.ebioro.client import EbioroClient
from worker.gateways.ebioro.paging import PAYMENTS, REFUNDS, EbioroPage
from worker.gateways.ebioro.payloads import Payment, Refund
from worker.gateways.ebioro.settings import EbioroSettings

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


class EbioroSource(GatewaySource[EbioroClient]):
    """Ebioro's payments and refunds feeds and single objects for source ``name``."""

    FEEDS = (PAYMENTS, REFUNDS)

    def page_bounds(self, page: EbioroPage[Any], number: int) -> tuple[int, int]:
        # A short or empty page ends the list even if totalPages says more
        # (docs/gateways/ebioro.md (E-PAGE-3): both signals).
        last = min(page.total_pages, number) if page.is_last(number) else page.total_pages
        return last, page.total_items

    def created_at(self, record: Payment | Refund) -> datetime | None:
        return record.created_at if isinstance(record, Payment) else None

    def objects(self) -> Mapping[str, ObjectFetch]:
        return {"payment": self.client.payment, "refund": self.client.refund}

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
        new version, and on full scans for every refund seen. A full scan does not fetch each
        payment regardless: it lists every payment from the payments feed anyway, so a payment
        changed in ways its refunds do not show converges within that scan all the same."""
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


def build_source(name: str, settings: EbioroSettings, limiter: Limiter) -> EbioroSource:
    """The source ``name`` over one account's client (paced by the process's ``limiter``)."""
    return EbioroSource(name, EbioroClient.from_settings(settings, source=name, limiter=limiter))
