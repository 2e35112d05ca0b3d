"""Aurpay as a sync ``Source``: its two feeds, single-object fetches and refund follow-ups."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.model import RawRecord, Rejected
from worker.errors import NotFound
from worker.gateways.aurpay.client import AurpayClient
from worker.gateways.aurpay.paging import ORDERS, TRANSACTIONS, Feed
from worker.gateways.aurpay.payloads import InvalidRecord
from worker.gateways.contract import FetchedPage, FollowUp, LatestLookup

SOURCE = "aurpay"
FEEDS: dict[str, Feed] = {ORDERS.name: ORDERS, TRANSACTIONS.name: TRANSACTIONS}  # type: ignore[type-arg]
REFUNDED = "REFUNDED"
# A refund-info looks final once every field the ledger and the `refund` rule need is present.
FINAL_REFUND_FIELDS = ("amount", "network_fee", "obtained", "to_addr")


def refund_looks_final(payload: object) -> bool:
    return isinstance(payload, dict) and all(
        payload.get(f) not in (None, "") for f in FINAL_REFUND_FIELDS
    )


class AurpaySource:
    """Adapts ``AurpayClient`` to the sync engine's ``Source`` protocol."""

    name = SOURCE
    feeds = (ORDERS.name, TRANSACTIONS.name)

    def __init__(self, client: AurpayClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"AurpaySource({self.client!r})"

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        fetched = self.client.fetch_page(FEEDS[feed], page)
        return FetchedPage(
            feed=feed,
            number=page,
            max_page=fetched.max_page,
            total=fetched.total,
            records=tuple(r.to_raw_record() for r in fetched.records),
            created=tuple(r.create_time for r in fetched.records),
            rejected=fetched.rejected,
        )

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        try:
            if kind == "order":
                return self.client.order_detail(external_id).to_raw_record()
            if kind == "refund":
                info = self.client.refund_info(external_id)
                return info.to_raw_record() if info else None
        except InvalidRecord as exc:
            return exc.rejected
        except NotFound:
            return None
        raise ValueError(f"aurpay has no single-object fetch for kind {kind!r}")

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
        stored = ledger.latest_many(SOURCE, "refund", seen_before) if seen_before else {}
        wanted += [
            oid
            for oid in seen_before
            if oid not in stored or (rescan and not refund_looks_final(stored[oid].payload))
        ]
        return [FollowUp("refund", oid) for oid in wanted]

    def close(self) -> None:
        self.client.close()
