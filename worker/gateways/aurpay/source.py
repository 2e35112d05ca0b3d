"""Aurpay as a sync ``Source``: its two feeds, single-object fetches and refund follow-ups.

One ``AurpaySource`` per account; everything it returns carries the source's name (``aurpay``,
``aurpay-eu``), which is what the ledger, cursors, alerts and metrics are keyed by.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from ledger.model import RawRecord
from worker.gateways.aurpay.client import AurpayClient
from worker.gateways.aurpay.paging import ORDERS, TRANSACTIONS, AurpayPage
from worker.gateways.aurpay.payloads import Order, Transaction
from worker.gateways.aurpay.recheck import RefundRecheck
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.base.http import Limiter
from worker.gateways.base.source import GatewaySource, ObjectFetch
from worker.gateways.contract import (
    FollowUp,
    FollowUpLedger,
    LatestLookup,
    PendingFollowUp,
)

REFUNDED = "REFUNDED"
# A refund-info looks final once every field the ledger and the `refund` rule need is present.
FINAL_REFUND_FIELDS = ("amount", "network_fee", "obtained", "to_addr")


def refund_looks_final(payload: object) -> bool:
    return isinstance(payload, dict) and all(
        payload.get(f) not in (None, "") for f in FINAL_REFUND_FIELDS
    )


class AurpaySource(GatewaySource[AurpayClient]):
    """Aurpay's orders and transactions feeds, order details and refund-info for source ``name``."""

    FEEDS = (ORDERS, TRANSACTIONS)

    def __init__(
        self, name: str, client: AurpayClient, recheck: RefundRecheck | None = None
    ) -> None:
        super().__init__(name, client)
        self.recheck = recheck or RefundRecheck()

    def page_bounds(self, page: AurpayPage[Any], number: int) -> tuple[int, int]:
        return page.max_page, page.total

    def created_at(self, record: Order | Transaction) -> datetime | None:
        return record.create_time

    def objects(self) -> Mapping[str, ObjectFetch]:
        return {"order": self.client.order_detail, "refund": self.client.refund_info}

    def follow_ups(
        self,
        records: Sequence[RawRecord],
        new_keys: set[tuple[str, str]],
        ledger: LatestLookup,
        *,
        rescan: bool,
    ) -> Sequence[FollowUp]:
        """Refund-info for refunded orders: when the REFUNDED version is first seen, on any
        later pass while it is missing, and on every full scan (``self.recheck``: a changed
        refund-info leaves its order unchanged); outside the recheck window, on full scans
        only until it looks final."""
        refunded = {
            r.external_id: r.payload
            for r in records
            if r.kind == "order" and r.payload.get("status") == REFUNDED
        }
        wanted = {
            oid
            for oid, order in refunded.items()
            if ("order", oid) in new_keys or (rescan and self.recheck.wants(order))
        }
        others = [oid for oid in refunded if oid not in wanted]
        # Missing is checked on every pass, not only on full scans: the pass that first stored
        # the REFUNDED version may have died between its commit and sending this follow-up.
        stored = ledger.latest_many(self.name, "refund", others) if others else {}
        wanted.update(
            oid
            for oid in others
            if oid not in stored or (rescan and not refund_looks_final(stored[oid].payload))
        )
        return [FollowUp("refund", oid) for oid in refunded if oid in wanted]

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


def build_source(name: str, settings: AurpaySettings, limiter: Limiter) -> AurpaySource:
    """The source ``name`` over one account's client (paced by the process's ``limiter``)."""
    client = AurpayClient.from_settings(settings, source=name, limiter=limiter)
    return AurpaySource(name, client, RefundRecheck.from_settings(settings))
