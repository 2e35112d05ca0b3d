"""Follow-ups appended with their page (issue 14) leave the ledger and the alerts exactly as one
message and one transaction per follow-up did: the same world, synced by both engines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ledger.alerts.state import OPEN
from ledger.alerts.store import AlertStore
from sandbox.aurpay import RunningSandbox
from tests.helpers.ledger_view import LedgerContent, ledger_content, truth_problems
from tests.helpers.sandbox import refundable_orders, run_sync, sandbox_settings
from worker.app.session import worker_session
from worker.sync import engine

Alerts = frozenset[tuple[Any, ...]]


def alerts(store: AlertStore) -> Alerts:
    """Every alert's cause and evidence, without ids, times or snapshot seqs."""
    fields = ("source", "rule", "subject_id", "check", "status", "currency", "expected")
    fields += ("actual", "difference", "detail", "severity")
    return frozenset(
        tuple(getattr(a, name) for name in fields)
        for a in store.list_alerts(statuses=(OPEN, "acknowledged", "resolved"))
    )


@contextmanager
def follow_ups_inline(inline: bool) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "INLINE_FOLLOW_UPS", inline)
        yield


def sync_both(
    sandbox: RunningSandbox, urls: dict[bool, str], mode: str = "full"
) -> dict[bool, tuple[LedgerContent, Alerts, int]]:
    """One sync of ``sandbox`` into each database, per object (False) and inline (True)."""
    out = {}
    for inline, url in urls.items():
        with follow_ups_inline(inline), worker_session(sandbox_settings(sandbox, url)) as session:
            summary = run_sync(session, mode)
            store = session.runtime.store
            assert truth_problems(store, sandbox.world) == []
            content = ledger_content(store)
            out[inline] = (content, alerts(AlertStore(store.engine)), summary.new_snapshots)
    return out


def assert_same(results: dict[bool, tuple[LedgerContent, Alerts, int]]) -> None:
    (old, old_alerts, old_new), (new, new_alerts, new_new) = results[False], results[True]
    assert old.differences(new) == []
    assert old == new
    assert old_alerts == new_alerts
    assert old_new == new_new  # the run's summary counts the follow-ups either way


def test_the_same_world_synced_per_object_and_inline_gives_the_same_ledger_and_alerts(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    sandbox = sandbox_factory(seed=77, orders=400)
    urls = {inline: f"sqlite:///{tmp_path}/inline-{inline}.db" for inline in (False, True)}

    first = sync_both(sandbox, urls)
    assert first[True][2] > 0
    assert_same(first)

    # Changes only a follow-up shows (a corrected refund-info), new refunds (order and
    # refund-info change together) and new orders: the next full scan and incremental run.
    world = sandbox.world
    corrected = world.truth()["refund_infos"][0]["order_id"]
    world.update_refund_info(corrected, {"network_fee": "0.5"})
    for order_id in refundable_orders(world)[:5]:
        world.refund(order_id)
    world.add_orders(30)
    assert_same(sync_both(sandbox, urls))
    # An incremental run sees what changed among the newest orders (older ones: full scans).
    world.refund(refundable_orders(world)[-1], mismatch=True)
    assert_same(sync_both(sandbox, urls, "incremental"))
