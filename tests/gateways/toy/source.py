"""Toy as a sync ``Source``: the invoices and credits feeds, single objects, and one follow-up:
the settlement of each paid invoice (which no list shows)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from ledger.model import RawRecord
from tests.gateways.toy.client import ToyClient
from tests.gateways.toy.paging import CREDITS, INVOICES, ToyPage
from tests.gateways.toy.settings import ToySettings
from worker.gateways.base.http import Limiter
from worker.gateways.base.source import GatewaySource, ObjectFetch
from worker.gateways.contract import (
    FollowUp,
    FollowUpLedger,
    LatestLookup,
    PendingFollowUp,
)

INVOICE, SETTLEMENT = "invoice", "settlement"


class ToySource(GatewaySource[ToyClient]):
    """The toy's invoices and credits feeds and single objects for source ``name``."""

    FEEDS = (INVOICES, CREDITS)

    def page_bounds(self, page: ToyPage[Any], number: int) -> tuple[int, int]:
        return (number if page.is_last(number) else max(page.pages, number)), page.total

    def created_at(self, record: Any) -> datetime | None:
        created: datetime | None = record.created_at
        return created

    def objects(self) -> Mapping[str, ObjectFetch]:
        return {
            INVOICE: self.client.invoice,
            "credit": self.client.credit,
            SETTLEMENT: self.client.settlement,
        }

    def follow_ups(
        self,
        records: Sequence[RawRecord],
        new_keys: set[tuple[str, str]],
        ledger: LatestLookup,
        *,
        rescan: bool,
    ) -> Sequence[FollowUp]:
        """The settlement of each paid invoice: when its paid version is new, on any pass while
        none is stored, and on every full scan (no list shows a settlement that changed)."""
        paid = [r.external_id for r in records if r.kind == INVOICE and _paid(r.payload)]
        wanted = [i for i in paid if rescan or (INVOICE, i) in new_keys]
        others = [i for i in paid if i not in wanted]
        stored = ledger.latest_many(self.name, SETTLEMENT, others) if others else {}
        wanted += [i for i in others if i not in stored]
        return [FollowUp(SETTLEMENT, invoice_id) for invoice_id in wanted]

    def pending_follow_ups(
        self, ledger: FollowUpLedger, since_seq: int = 0
    ) -> Iterator[PendingFollowUp]:
        """The settlement of each paid invoice stored after ``since_seq`` when none is stored
        (one stored is the answer: asking again would leave no trace, so it would stay pending)."""
        invoices = [
            invoice
            for invoice in ledger.iter_latest_since(
                self.name, INVOICE, since_seq, containing='"paid"', without_later=SETTLEMENT
            )
            if _paid(invoice.payload)
        ]
        ids = [invoice.external_id for invoice in invoices]
        stored = ledger.latest_many(self.name, SETTLEMENT, ids) if ids else {}
        for invoice in invoices:
            if invoice.external_id not in stored:
                yield PendingFollowUp(FollowUp(SETTLEMENT, invoice.external_id), invoice.seq)


def _paid(invoice: Mapping[str, Any]) -> bool:
    return invoice.get("status") == "paid"


def build_source(name: str, settings: ToySettings, limiter: Limiter) -> ToySource:
    """The source ``name`` over one account's client (paced by the process's ``limiter``)."""
    return ToySource(name, ToyClient.from_settings(settings, source=name, limiter=limiter))
