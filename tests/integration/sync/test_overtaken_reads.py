"""A page read before an object changed upstream, landing after a fresh read of that object
stored the change, must not store the old state again as a newer version: the object is read
again on its own instead. Real sandbox over HTTP, SQLite and PostgreSQL.

Found by the soak: a full scan's page fetched before an order was paid landed 0.3 s after the
payment's callback had stored it paid, and the ledger went OVERDUE → SUCCESS → OVERDUE →
SUCCESS (and opened a false ``status-regression``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.aurpay import RunningSandbox
from sandbox.aurpay.generate import PAID_STATUSES
from tests.helpers.ledger_view import truth_problems
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.session import worker_session
from worker.gateways.contract import FetchedPage, FollowUp
from worker.sync.engine import sync_object, sync_page


def _statuses(session: Any, order_id: str) -> list[str]:
    store = session.runtime.store
    versions = store.versions_many("aurpay", "order", [order_id]).get(order_id, [])
    return [s.payload["status"] for s in versions]


def test_a_page_read_before_a_change_does_not_undo_a_fresher_read(
    sandbox_factory: Callable[..., RunningSandbox], ledger_url: str
) -> None:
    sandbox = sandbox_factory(seed=7, orders=30)
    settings = sandbox_settings(sandbox, ledger_url, aurpay_page_size=10)
    with worker_session(settings) as session:
        run_sync(session, "full")
        ctx = session.runtime.sync
        src = ctx.source("aurpay")
        first = src.fetch_page("orders", 1)
        unpaid = [
            r.external_id
            for r in first.records
            if r.kind == "order" and r.payload.get("status") not in PAID_STATUSES
        ]
        assert unpaid, "the world needs an unpaid order on the first page"
        order_id = unpaid[0]
        before = _statuses(session, order_id)

        read_page = src.fetch_page

        def read_then_pay(feed: str, number: int) -> FetchedPage:
            page = read_page(feed, number)  # the page holds the order unpaid...
            sandbox.world.pay(order_id)  # ...it is paid upstream while the page is in flight,
            sync_object(ctx, "aurpay", "order", order_id, None)  # and a callback stores it
            return page

        src.fetch_page = read_then_pay  # type: ignore[method-assign]
        ctx.state.start_run("late-page", "aurpay", "full", ctx.now())
        outcome = sync_page(ctx, "aurpay", "orders", 1, "late-page", rescan=True)
        src.fetch_page = read_page  # type: ignore[method-assign]

        assert _statuses(session, order_id) == [*before, "SUCCESS"]
        assert FollowUp("order", order_id) in outcome.follow_ups  # read again, on its own
        again = sync_object(ctx, "aurpay", "order", order_id, None)
        assert again.new_snapshots == 0  # the fresh read agrees with what is stored

        run_sync(session, "full")
        assert _statuses(session, order_id) == [*before, "SUCCESS"]
        assert truth_problems(session.runtime.store, sandbox.world) == []
