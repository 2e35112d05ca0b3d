"""AurpaySource follow-ups: which refund-infos each pass fetches, and the full scans' recheck."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from ledger.model import RawRecord, Snapshot
from tests.strategies import make_snapshot
from worker.gateways.aurpay.client import AurpayClient
from worker.gateways.aurpay.recheck import RefundRecheck
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.aurpay.source import AurpaySource, build_source
from worker.gateways.base import NoLimit
from worker.gateways.contract import FollowUp

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FINAL = {"order_id": "x", "currency": "USDT", "amount": "5", "network_fee": "1",
         "obtained": "4", "to_addr": "TQ7"}  # fmt: skip


def order(order_id: str, status: str = "REFUNDED", updated: str | None = None) -> RawRecord:
    payload = {"order_id": order_id, "status": status, "currency": "USDT", "amount": "5",
               "create_time": "2025-01-01T00:00:00", "update_time": updated}  # fmt: skip
    return RawRecord("aurpay", "order", order_id, payload)


class Ledger:
    """The one read follow-ups need, over a dict of stored refund-infos."""

    def __init__(self, refunds: dict[str, dict[str, Any]]) -> None:
        self.refunds = refunds
        self.asked: list[list[str]] = []

    def latest_many(self, src: str, kind: str, external_ids: Sequence[str]) -> dict[str, Snapshot]:
        assert (src, kind) == ("aurpay", "refund")
        self.asked.append(list(external_ids))
        return {
            i: make_snapshot(kind, self.refunds[i], external_id=i)
            for i in external_ids
            if i in self.refunds
        }


def source(recheck: RefundRecheck | None = None) -> AurpaySource:
    client = AurpayClient.from_settings(AurpaySettings(api_key=SecretStr("k")))
    return AurpaySource("aurpay", client, recheck)


def refund_ids(follow_ups: Sequence[FollowUp]) -> list[str]:
    assert {f.kind for f in follow_ups} <= {"refund"}
    return [f.external_id for f in follow_ups]


def test_a_full_scan_refetches_every_refunded_orders_refund_info_by_default() -> None:
    batch = [order("o1"), order("o2", "SUCCESS"), order("o3"), order("o1")]
    ledger = Ledger({"o1": FINAL, "o3": FINAL})

    wanted = source().follow_ups(batch, set(), ledger, rescan=True)

    assert refund_ids(wanted) == ["o1", "o3"]  # once each, in page order
    assert ledger.asked == []  # every one is wanted: nothing to look up


def test_an_incremental_pass_fetches_only_new_or_missing_refund_infos() -> None:
    batch = [order("new"), order("missing"), order("stored"), order("unfinished")]
    ledger = Ledger({"stored": FINAL, "unfinished": {**FINAL, "to_addr": ""}})

    wanted = source().follow_ups(batch, {("order", "new")}, ledger, rescan=False)

    assert refund_ids(wanted) == ["new", "missing"]
    assert ledger.asked == [["missing", "stored", "unfinished"]]


def test_a_recheck_window_leaves_older_final_refund_infos_alone() -> None:
    recheck = RefundRecheck(timedelta(days=7), clock=lambda: NOW)
    batch = [
        order("recent", updated="2025-02-27T09:00:00"),
        order("old", updated="2025-01-02T09:00:00"),
        order("old-unfinished", updated="2025-01-02T09:00:00"),
        order("old-missing", updated="2025-01-02T09:00:00"),
        order("undated"),  # no update_time: its create_time (2025-01-01) decides
    ]
    ledger = Ledger({k: FINAL for k in ("recent", "old", "undated")})
    ledger.refunds["old-unfinished"] = {**FINAL, "network_fee": None}

    wanted = source(recheck).follow_ups(batch, set(), ledger, rescan=True)

    assert refund_ids(wanted) == ["recent", "old-unfinished", "old-missing"]
    assert ledger.asked == [["old", "old-unfinished", "old-missing", "undated"]]


@pytest.mark.parametrize(
    ("updated", "zone", "wanted"),
    [
        ("2025-02-22T12:00:00", "UTC", True),  # exactly 7 days: still inside
        ("2025-02-22T11:59:59", "UTC", False),
        ("2025-02-22T12:00:00", "Asia/Tokyo", False),  # 03:00 UTC: 7 days 9 hours ago
        ("2025-02-22T12:00:00-01:00", "UTC", True),  # a zone in the value wins
        ("not a time", "UTC", False),  # falls back to create_time
    ],
)
def test_the_window_reads_update_time_in_the_accounts_zone(
    updated: str, zone: str, wanted: bool
) -> None:
    recheck = RefundRecheck(timedelta(days=7), ZoneInfo(zone), clock=lambda: NOW)
    assert recheck.wants(order("o", updated=updated).payload) is wanted


def test_an_order_with_no_readable_time_is_rechecked() -> None:
    recheck = RefundRecheck(timedelta(days=1), clock=lambda: NOW)
    assert recheck.wants({"order_id": "o", "status": "REFUNDED"})


def test_the_setting_builds_the_window() -> None:
    def built(**values: Any) -> RefundRecheck:
        src = build_source("aurpay", AurpaySettings(api_key=SecretStr("k"), **values), NoLimit())
        src.close()
        return src.recheck

    assert built().max_age is None  # the default: every REFUNDED order
    window = built(refund_recheck_max_age_days=30, naive_timezone="Europe/Lisbon")
    assert (window.max_age, window.naive_tz) == (timedelta(days=30), ZoneInfo("Europe/Lisbon"))
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        AurpaySettings(api_key=SecretStr("k"), refund_recheck_max_age_days=-1)
