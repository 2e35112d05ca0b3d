"""Aurpay as a sync ``Source``: its two feeds, single-object fetches and refund follow-ups.

One ``AurpaySource`` per account; everything it returns carries the source's name (``aurpay``,
``aurpay-eu``), which is what the ledger, cursors, alerts and metrics are keyed by.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from ledger.model import RawRecord, Rejected
from worker.errors import NotFound
from worker.gateways.aurpay.client import AurpayClient
from worker.gateways.aurpay.paging import ORDERS, TRANSACTIONS, Feed
from worker.gateways.aurpay.payloads import InvalidRecord
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.base.http import Limiter
from worker.gateways.contract import (
    FetchedPage,
    FollowUp,
    FollowUpLedger,
    LatestLookup,
    PendingFollowUp,
)

FEEDS: dict[str, Feed[Any]] = {ORDERS.name: ORDERS, TRANSACTIONS.name: TRANSACTIONS}
REFUNDED = "REFUNDED"
# A refund-info looks final once every field the ledger and the `refund` rule need is present.
FINAL_REFUND_FIELDS = ("amount", "network_fee", "obtained", "to_addr")


def refund_looks_final(payload: object) -> bool:
    return isinstance(payload, dict) and all(
        payload.get(f) not in (None, "") for f in FINAL_REFUND_FIELDS
    )


class AurpaySource:
    """Adapts ``AurpayClient`` to the sync engine's ``Source`` protocol for source ``name``."""

    feeds: tuple[str, ...] = (ORDERS.name, TRANSACTIONS.name)

    def __init__(self, name: str, client: AurpayClient) -> None:
        self.name = name
        self.client = client

    def __repr__(self) -> str:
        return f"AurpaySource({self.name!r}, {self.client!r})"

    def _own(self, item: RawRecord | Rejected) -> RawRecord | Rejected:
        """``item`` under this source's name (payload parsing knows only the gateway's)."""
        return replace(item, source=self.name)

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        fetched = self.client.fetch_page(FEEDS[feed], page)
        return FetchedPage(
            feed=feed,
            number=page,
            max_page=fetched.max_page,
            total=fetched.total,
            records=tuple(replace(r.to_raw_record(), source=self.name) for r in fetched.records),
            created=tuple(r.create_time for r in fetched.records),
            rejected=tuple(replace(r, source=self.name) for r in fetched.rejected),
        )

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        try:
            if kind == "order":
                return self._own(self.client.order_detail(external_id).to_raw_record())
            if kind == "refund":
                info = self.client.refund_info(external_id)
                return self._own(info.to_raw_record()) if info else None
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
        """Refund-info for refunded orders: when the REFUNDED version is first seen, on any
        later pass while it is missing, and on full scans until it looks final."""
        refunded = [
            r.external_id
            for r in records
            if r.kind == "order" and r.payload.get("status") == REFUNDED
        ]
        wanted = [oid for oid in refunded if ("order", oid) in new_keys]
        seen_before = [oid for oid in refunded if ("order", oid) not in new_keys]
        # Missing is checked on every pass, not only on full scans: the pass that first stored
        # the REFUNDED version may have died between its commit and sending this follow-up.
        stored = ledger.latest_many(self.name, "refund", seen_before) if seen_before else {}
        wanted += [
            oid
            for oid in seen_before
            if oid not in stored or (rescan and not refund_looks_final(stored[oid].payload))
        ]
        return [FollowUp("refund", oid) for oid in wanted]

    def pending_follow_ups(
        self, ledger: FollowUpLedger, since_seq: int = 0
    ) -> Iterator[PendingFollowUp]:
        """The refund-info of each REFUNDED order stored after ``since_seq`` when none is stored,
        or the stored one predates the order's latest version and does not look final (a final
        one is not asked again: an unchanged answer leaves no trace, so it would stay pending)."""
        orders = [
            order
            for order in ledger.iter_latest_since(
                self.name, "order", since_seq, containing=f'"{REFUNDED}"', without_later="refund"
            )
            if order.payload.get("status") == REFUNDED
        ]
        ids = [order.external_id for order in orders]
        stored = ledger.latest_many(self.name, "refund", ids) if ids else {}
        for order in orders:
            refund = stored.get(order.external_id)
            if refund is None or not refund_looks_final(refund.payload):
                yield PendingFollowUp(FollowUp("refund", order.external_id), order.seq)

    def close(self) -> None:
        self.client.close()


def build_source(name: str, settings: AurpaySettings, limiter: Limiter) -> AurpaySource:
    """The source ``name`` over one account's client (paced by the process's ``limiter``)."""
    return AurpaySource(name, AurpayClient.from_settings(settings, source=name, limiter=limiter))
