"""The upstreams change while tally syncs: new orders and payments and a late refund of an old
order and of an old payment (deep in history, far behind any incremental walk) in the middle of
the first full scan; then a silent refund edit on each gateway (the order or payment unchanged,
nothing called back). Callbacks and webhooks point at the callback server of ``tally run``, as a
deployment sets them up; the silent edits reach tally only if it looks again by itself: the next
full scan re-fetches every refund-info (Aurpay), an incremental sync lists every refund (Ebioro).
The full-scan interval is shortened to its minimum, a minute, in place of a day.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.precision import PrecisionTable
from sandbox.aurpay import SandboxConfig
from sandbox.ebioro.model import EbioroSandboxConfig
from tests.chaos.harness import LedgerProbe, Scenario
from tests.chaos.judge import Expected, ObjectId
from tests.chaos.upstream import Upstream
from tests.helpers.sandbox import refundable_orders
from worker.gateways.aurpay.settings import SANDBOX_CALLBACK_SECRET, SANDBOX_CALLBACK_TOKEN

pytestmark = [pytest.mark.chaos]

CHANGE_AT_REFUNDS = 0.3
NEW_ORDERS, NEW_PAYMENTS = 5, 3
CONVERGE_SECONDS = 45  # the rest of the full scan; callbacks are immediate
FULL_SCAN_SECONDS = 60  # the setting's minimum: the next full scan comes within a minute
EDITS_CONVERGE_SECONDS = 120  # that full scan, with every refund-info fetched again


def add_and_refund_late(upstream: Upstream, versions: dict[ObjectId, int]) -> None:
    """New orders and payments, and a late refund of the oldest paid order and payment: the
    last page of their feeds, which no incremental walk reaches."""
    aurpay = upstream.aurpay.world
    aurpay.add_orders(NEW_ORDERS)
    late = refundable_orders(aurpay)[0]
    aurpay.refund(late, mismatch=False)  # called back
    versions[("aurpay", "order", late)] = 2  # paid, then refunded
    ebioro = upstream.ebioro.world
    ebioro.add_payments(NEW_PAYMENTS)
    truth = ebioro.truth()
    refunded = {r["payment"]["id"] for r in truth["refunds"] if isinstance(r.get("payment"), dict)}
    paid = [p for p in truth["payments"] if p.get("status") == "paid" and p["id"] not in refunded]
    payment = min(paid, key=lambda p: (p["createdAt"], p["id"]))["id"]
    ebioro.refund_payment(payment)  # all of it: the payment becomes refunded (webhook)
    versions[("ebioro", "payment", payment)] = 2


def edit_silently(upstream: Upstream, probe: LedgerProbe, versions: dict[ObjectId, int]) -> None:
    """Change a refund already in the ledger on each gateway, telling no one: an Aurpay
    refund-info moves money between its fee and what the customer got (still consistent, so no
    alert), an Ebioro refund becomes one cent smaller."""
    stored = (s.external_id for s in probe.store.iter_latest("aurpay", "refund"))
    edited = next(i for i in stored if ("aurpay", "order", i) not in versions)  # not the late one
    aurpay = upstream.aurpay.world
    info = aurpay.refund_info(edited)
    step = 7 * PrecisionTable().unit(info["currency"])
    aurpay.update_refund_info(
        edited,
        {"network_fee": str(info["network_fee"] + step), "obtained": str(info["obtained"] - step)},
    )
    versions[("aurpay", "refund", edited)] = 2
    refund = next(  # not a refund of the payment refunded late
        s.external_id
        for s in probe.store.iter_latest("ebioro", "refund")
        if ("ebioro", "payment", s.payload["payment"]["id"]) not in versions
    )
    value = upstream.ebioro.world.refund(refund)["amount"]["value"]
    upstream.ebioro.world.update_refund(refund, {"amount": {"value": value - 1}})
    versions[("ebioro", "refund", refund)] = 2


def with_versions(upstream: Upstream, versions: dict[ObjectId, int]) -> Callable[[], Expected]:
    def expected() -> Expected:
        truth = upstream.expected()
        truth.versions.update(versions)
        return truth

    return expected


def test_new_records_late_refunds_and_silent_edits_during_a_sync_all_reach_the_ledger(
    scenario: Scenario, tmp_path: Path
) -> None:
    upstream = scenario.upstream(
        (
            SandboxConfig(seed=701, orders=200, latency_ms=40),
            EbioroSandboxConfig(seed=702, payments=80, latency_ms=40),
        )
    )
    url = f"sqlite:///{tmp_path}/chaos.db"
    env = scenario.embedded_env(
        upstream,
        url,
        aurpay_callback_token=SANDBOX_CALLBACK_TOKEN,
        aurpay_callback_secret=SANDBOX_CALLBACK_SECRET,
        **scenario.shorten(sync_full_scan_interval_seconds=FULL_SCAN_SECONDS),
    )
    callbacks = f"http://127.0.0.1:{env['TALLY_CALLBACK_PORT']}/callbacks"
    upstream.aurpay.world.set_callbacks(f"{callbacks}/aurpay")
    upstream.ebioro.world.set_webhook(f"{callbacks}/ebioro")
    scenario.start("run", env=env)
    probe = scenario.probe(url)
    point = scenario.until_stored(probe, upstream, "refund", CHANGE_AT_REFUNDS)

    versions: dict[ObjectId, int] = {}
    add_and_refund_late(upstream, versions)
    scenario.fault(f"late refunds at {point}", len(versions))
    scenario.fault("new aurpay orders", NEW_ORDERS)
    scenario.fault("new ebioro payments", NEW_PAYMENTS)
    scenario.converge(url, with_versions(upstream, versions), CONVERGE_SECONDS)

    # Once the full scan is done: silent edits, found by the next one.
    edit_silently(upstream, probe, versions)
    scenario.fault("silent refund edits after the full scan", 2)
    for source, kind, external_id in sorted(versions):
        scenario.fault(f"changed {source} {kind} {external_id}")
    scenario.converge(url, with_versions(upstream, versions), EDITS_CONVERGE_SECONDS)
    scenario.conclude(url, upstream, with_versions(upstream, versions)())
