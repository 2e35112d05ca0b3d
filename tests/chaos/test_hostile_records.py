"""Hostile records among the upstream's own: the Aurpay sandbox lists any JSON verbatim (its
admin API), the Ebioro sandbox plants junk beside real payments and refunds. Each costs only
itself (quarantined once, with its raw text), a valid far-future order is stored but never
becomes the cursor (new orders keep coming in), and a duplicated id keeps one version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.aurpay import RunningSandbox, SandboxConfig
from sandbox.ebioro.model import EbioroSandboxConfig
from tests.chaos.harness import PAGE_SIZE, Scenario
from tests.chaos.judge import Expected, quarantine_text
from tests.chaos.upstream import Upstream

pytestmark = [pytest.mark.chaos]

WHEN = "2025-01-01T00:05:30"  # among the oldest orders: only a full scan reads their page
CONVERGE_SECONDS = 30  # one full scan, then incremental syncs every 3 s


def order(order_id: Any, **fields: Any) -> dict[str, Any]:
    base = {"order_id": order_id, "status": "SUCCESS", "currency": "BTC", "amount": "0.001"}
    return {**base, "fee": "0.00001", "create_time": WHEN, **fields}


QUARANTINED = [
    order("9" * 129),  # one character over the column's 128
    order("H-overflow", create_time="9999-12-31T23:59:59-05:00"),  # beyond datetime in UTC
    order("H-fullwidth", amount="１２３"),
    order("H-underscore", amount="1_000"),
    order("H-spaces", amount=" 1.5 "),
]
FAR_FUTURE = order("F-9999", create_time="9999-12-31T23:59:59")  # valid: listed first, always
NEW_ORDERS, NEW_PAYMENTS = 5, 3


def list_verbatim(sandbox: RunningSandbox, item: Any) -> None:
    """Have the sandbox list ``item`` in its orders feed exactly as given (admin API)."""
    reply = httpx.post(f"{sandbox.base_url}/_admin/orders/raw", json={"order": item}, timeout=5)
    reply.raise_for_status()


class Listed:
    """The hostile items the test listed: those to quarantine, those valid (stored as listed),
    and the ids listed twice on one page (the page's first copy stored, the other quarantined)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.invalid: list[Any] = []
        self.valid: list[dict[str, Any]] = []
        self.duplicated: list[str] = []

    def add(self, *items: Any, invalid: bool = False) -> None:
        for item in items:
            list_verbatim(self.upstream.aurpay, item)
        if invalid:
            self.invalid += items
        else:
            self.valid += items

    def add_twice(self, first: dict[str, Any], second: dict[str, Any]) -> None:
        list_verbatim(self.upstream.aurpay, first)
        list_verbatim(self.upstream.aurpay, second)
        self.duplicated.append(first["order_id"])
        places = [i for i, o in enumerate(self.listed()) if _named(o, first["order_id"])]
        assert len({i // PAGE_SIZE for i in places}) == 1, f"the copies straddle a page: {places}"

    def listed(self) -> list[Any]:
        return list(self.upstream.aurpay.world.truth()["orders"])

    def expected(self) -> Expected:
        """The sandboxes' truth with what was listed stored or quarantined."""
        expected = self.upstream.expected()
        listed = self.listed()
        stored = list(self.valid)
        quarantined = list(self.invalid)
        for order_id in self.duplicated:
            first, *others = [o for o in listed if _named(o, order_id)]
            stored.append(first)
            quarantined += others
        for item in stored:
            expected.objects[("aurpay", "order", item["order_id"])] = quarantine_text(item).encode()
        for item in quarantined:
            expected.quarantined[quarantine_text(item)] += 1
        return expected

    @property
    def count(self) -> int:
        return len(self.invalid) + len(self.valid) + 2 * len(self.duplicated)


def _named(item: Any, order_id: str) -> bool:
    return isinstance(item, dict) and item.get("order_id") == order_id


def test_hostile_records_cost_only_themselves_and_never_freeze_the_cursor(
    scenario: Scenario, tmp_path: Path
) -> None:
    upstream = scenario.upstream(
        (
            SandboxConfig(seed=601, orders=200, latency_ms=10),
            EbioroSandboxConfig(seed=602, payments=80, latency_ms=10, rate_invalid_record=0.1),
        )
    )
    hostile = Listed(upstream)
    hostile.add(*QUARANTINED, invalid=True)
    hostile.add(FAR_FUTURE)
    hostile.add_twice(order("D-1", amount="0.001"), order("D-1", amount="0.002"))
    url = f"sqlite:///{tmp_path}/chaos.db"
    scenario.start("run", env=scenario.embedded_env(upstream, url))
    scenario.converge(url, hostile.expected, CONVERGE_SECONDS)

    # New records after the far-future order, hostile ones among them on the newest page: only
    # an incremental sync that was not frozen by it picks them up before the next full scan.
    new = set(upstream.aurpay.world.add_orders(NEW_ORDERS))
    upstream.ebioro.world.add_payments(NEW_PAYMENTS)
    newest = max(o["create_time"] for o in hostile.listed() if o.get("order_id") in new)
    hostile.add(order("8" * 129, create_time=newest), invalid=True)
    hostile.add_twice(
        order("D-2", amount="0.001", create_time=newest),
        order("D-2", amount="0.002", create_time=newest),
    )
    scenario.fault("aurpay hostile items listed", hostile.count)
    scenario.fault("ebioro junk records planted", len(upstream.ebioro.world.invalid_records()))
    scenario.fault("new records after the far-future order", NEW_ORDERS + NEW_PAYMENTS)
    scenario.converge(url, hostile.expected, CONVERGE_SECONDS)
    scenario.conclude(url, upstream, hostile.expected())
