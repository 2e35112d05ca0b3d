"""The Aurpay sandbox's ``POST /_admin/orders/raw``: any JSON value is listed verbatim."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger import jsonx
from sandbox.aurpay import RunningSandbox, SandboxConfig, start_sandbox
from worker.gateways.aurpay.settings import SANDBOX_API_KEY

ORDERS = "/api/v2/order/"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(seed=41, orders=6)) as running:
        yield running


def listed(sandbox: RunningSandbox) -> list[Any]:
    reply = httpx.get(
        sandbox.base_url + ORDERS,
        params={"page": 1, "size": 100},
        headers={"API-Key": SANDBOX_API_KEY},
    )
    return list(jsonx.loads(reply.content)["data"]["data"])


def test_a_raw_item_is_served_exactly_as_given_where_its_create_time_puts_it(
    sandbox: RunningSandbox,
) -> None:
    future = {"order_id": "F", "amount": "１２３", "create_time": "9999-12-31T23:59:59", "x": None}
    items: list[Any] = [future, "not an object", {"order_id": 7}]
    for item in items:
        reply = httpx.post(f"{sandbox.base_url}/_admin/orders/raw", json={"order": item})
        assert reply.status_code == 200
    assert jsonx.loads(reply.content)["data"] == {"listed": 3}

    served = listed(sandbox)

    assert len(served) == 6 + 3
    assert served[0] == future  # newest first: its own create_time puts it on top
    assert served[1:3] == [{"order_id": 7}, "not an object"]  # no create_time: the newest
    truth = sandbox.world.truth()
    assert truth["raw_orders"] == items and truth["orders"] == served


def test_a_body_without_the_order_is_refused(sandbox: RunningSandbox) -> None:
    reply = httpx.post(f"{sandbox.base_url}/_admin/orders/raw", json={"count": 1})
    assert reply.status_code == 400
    assert "order" in jsonx.loads(reply.content)["message"]
