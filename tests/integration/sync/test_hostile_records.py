"""Hostile records over real HTTP, on SQLite and PostgreSQL: a bad record costs only itself.

The Aurpay sandbox lists each hostile item verbatim (``POST /_admin/orders/raw``) next to valid
orders; the sync commits the valid ones and quarantines the rest with their raw JSON and reason,
a far-future order never moves the cursor, and a duplicated id does not flip between versions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from structlog.testing import capture_logs

from ledger import jsonx
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import quarantined, truth_problems, versions_per_object
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.session import worker_session
from worker.gateways.base.paging import DUPLICATE_ID

SandboxFactory = Callable[..., RunningSandbox]
WHEN = "2025-01-01T00:05:30"  # among the sandbox's first orders: the same page


def list_verbatim(sandbox: RunningSandbox, item: Any) -> None:
    """Have the sandbox list ``item`` in its orders feed exactly as given (admin API)."""
    reply = httpx.post(f"{sandbox.base_url}/_admin/orders/raw", json={"order": item}, timeout=5)
    reply.raise_for_status()


def order(order_id: Any, **fields: Any) -> dict[str, Any]:
    base = {"order_id": order_id, "status": "SUCCESS", "currency": "BTC", "amount": "0.001"}
    return {**base, "fee": "0.00001", "create_time": WHEN, **fields}


# (the item as listed, what its quarantine reason must say)
HOSTILE: list[tuple[Any, str]] = [
    (order("9" * 129), "order_id: 129 characters, longer than the 128"),
    (order("H-overflow", create_time="9999-12-31T23:59:59-05:00"), "create_time: not an ISO"),
    (order("H-fullwidth", amount="１２３"), "amount: not a decimal amount"),
    (order("H-underscore", amount="1_000"), "amount: not a decimal amount"),
    (order("H-spaces", amount=" 1.5 "), "amount: not a decimal amount"),
    (order("H-nan", amount="NaN"), "amount: not a decimal amount"),
    (order("H-negative-fee", fee="-0.0001"), "fee: negative amount"),
    (order("H-currency", currency="X" * 81), "currency: 81 characters"),
    (order(20250101000530), "order_id: expected a string, got number"),
    ("an order", "expected a JSON object, got string"),
]
LONGEST_ID = "8" * 128  # the column's bound exactly: stored on both databases


def test_a_page_of_hostile_records_commits_its_valid_records_and_quarantines_the_rest(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=31, orders=20)
    for item, _ in HOSTILE:
        list_verbatim(sandbox, item)
    list_verbatim(sandbox, order(LONGEST_ID))
    settings = sandbox_settings(sandbox, ledger_url, aurpay_page_size=100)  # one page

    with worker_session(settings) as session:
        store = session.runtime.store
        first = run_sync(session)

        # Every valid order of the page is in, the 128-character id too; nothing else is.
        assert truth_problems(store, sandbox.world) == [
            f"not in the sandbox: {('order', LONGEST_ID)}"
        ]
        assert first.rejected == len(HOSTILE)
        rows = quarantined(store.engine)
        assert len(rows) == len(HOSTILE)
        for (item, reason), row in zip(HOSTILE, sorted(rows, key=_listed_order), strict=True):
            assert reason in row["reason"]
            assert row["raw"] == (item if isinstance(item, str) else jsonx.dumps(item))
        # A quarantine row keeps an id only when its column can hold it.
        assert {r["external_id"] for r in rows} >= {None, "H-overflow", "H-currency"}
        assert "9" * 129 not in {r["external_id"] for r in rows}

        again = run_sync(session)

        assert (again.new_snapshots, again.journal_entries) == (0, 0)
        assert again.rejected == len(HOSTILE)  # seen again, and quarantined once
        assert len(quarantined(store.engine)) == len(HOSTILE)


def _listed_order(row: Any) -> int:
    """A quarantine row's place in ``HOSTILE``, by its raw text."""
    raws = [item if isinstance(item, str) else jsonx.dumps(item) for item, _ in HOSTILE]
    return raws.index(row["raw"])


def test_after_a_far_future_order_an_incremental_sync_picks_up_every_new_order(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=32, orders=30)
    future = order("F-9999", create_time="9999-12-31T23:59:59")  # valid: listed first, always
    list_verbatim(sandbox, future)
    settings = sandbox_settings(sandbox, ledger_url, aurpay_page_size=5, sync_lookback_seconds=60)
    with capture_logs() as logs, worker_session(settings) as session:
        store, state = session.runtime.store, session.runtime.state
        run_sync(session)

        assert store.latest("aurpay", "order", "F-9999") is not None  # stored as received
        mark = state.high_water("aurpay", "orders")
        assert mark is not None and mark < datetime(2026, 1, 1, tzinfo=UTC)
        assert [e["external_id"] for e in logs if e["event"] == "record_from_the_future"] == [
            "F-9999"
        ]

        new = sandbox.world.add_orders(5)  # page 1: the future order and four new ones
        incremental = run_sync(session, "incremental")

        assert all(store.latest("aurpay", "order", order_id) for order_id in new)
        assert truth_problems(store, sandbox.world) == [
            f"not in the sandbox: {('order', 'F-9999')}"
        ]
        assert incremental.pages < 10  # an incremental walk, not a full scan (7 + 2 pages)
        # Seen again, unchanged: nothing new to say about it.
        assert len([e for e in logs if e["event"] == "record_from_the_future"]) == 1


def test_three_syncs_of_a_page_with_a_duplicated_id_leave_at_most_two_versions(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=33, orders=20)
    list_verbatim(sandbox, order("D-1", amount="0.001"))
    list_verbatim(sandbox, order("D-1", amount="0.002"))  # same id, other content, same page
    listed = [o for o in sandbox.world.truth()["orders"] if o.get("order_id") == "D-1"]
    settings = sandbox_settings(sandbox, ledger_url, aurpay_page_size=100)

    with worker_session(settings) as session:
        store = session.runtime.store
        runs = [run_sync(session) for _ in range(3)]

        assert versions_per_object(store)[("aurpay", "order", "D-1")] <= 2
        assert [(r.new_snapshots, r.journal_entries) for r in runs[1:]] == [(0, 0), (0, 0)]
        latest = store.latest("aurpay", "order", "D-1")
        assert latest is not None and latest.payload == listed[0]  # the page's first copy
        [row] = quarantined(store.engine)
        assert (row["reason"], row["external_id"]) == (DUPLICATE_ID, "D-1")
        assert jsonx.loads(row["raw"]) == listed[1]
