"""Convergence of refunds over real HTTP, on SQLite and PostgreSQL: a refund-info the provider
corrects silently reaches the ledger, the journal and the alerts on the next full scan; and the
clock alone opens ``refund-missing`` / ``refunded-without-refund`` for objects whose page no run
re-reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select

from ledger.alerts.state import Alert
from ledger.alerts.store import AlertStore
from ledger.storage.store import LedgerStore
from ledger.storage.sync_tables import SYNC_RUN_ITEM
from ledger.timeparse import first_timestamp
from sandbox.aurpay import RunningSandbox
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.server import start_sandbox as start_ebioro
from tests.helpers.ledger_view import stored, truth_problems
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.session import WorkerSession, worker_session
from worker.config import Settings, load_settings
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY, SANDBOX_SECRET_KEY

SandboxFactory = Callable[..., RunningSandbox]
Key = tuple[str, str]  # (rule, subject_id)


@contextmanager
def session_at(settings: Settings, now: datetime | None = None) -> Iterator[WorkerSession]:
    """A worker session whose clock reads ``now`` plus the time elapsed (None: the real one)."""
    with worker_session(settings) as session:
        if now is not None:
            offset = now - datetime.now(UTC)
            session.runtime.now = lambda: datetime.now(UTC) + offset
        yield session


def alerts(store: LedgerStore) -> dict[Key, Alert]:
    return {(a.rule, a.subject_id): a for a in AlertStore(store.engine).list_alerts()}


def run_items(store: LedgerStore, run_id: str, like: str) -> list[str]:
    stmt = select(SYNC_RUN_ITEM.c.item).where(
        SYNC_RUN_ITEM.c.run_id == run_id, SYNC_RUN_ITEM.c.item.like(like)
    )
    with store.engine.connect() as conn:
        return sorted(row.item for row in conn.execute(stmt))


def edit_refund_info(sandbox: RunningSandbox, order_id: str, **changes: Decimal) -> None:
    """The provider corrects a refund-info silently (the admin API; its order does not change)."""
    body = {name: str(value) for name, value in changes.items()}
    httpx.put(f"{sandbox.base_url}/_admin/refund-info/{order_id}", json=body).raise_for_status()


# --- Aurpay: a refund-info corrected upstream


def test_a_silent_refund_info_edit_converges_on_the_next_full_sync(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=23, orders=120)
    world = sandbox.world
    planted_ids = {subject for _, subject in world.expected_mismatches()}
    clean = [r for r in world.truth()["refund_infos"] if r["order_id"] not in planted_ids]
    broken, restated = clean[0], clean[1]
    refunded = sorted(o["order_id"] for o in world.truth()["orders"] if o["status"] == "REFUNDED")

    with session_at(sandbox_settings(sandbox, ledger_url)) as session:
        store = session.runtime.store
        run_sync(session)
        assert set(alerts(store)) == world.expected_mismatches()

        # Both edits change amounts; only the first breaks amount − network_fee = obtained.
        oid = broken["order_id"]
        edit_refund_info(sandbox, oid, obtained=broken["obtained"] - broken["network_fee"])
        fee = restated["network_fee"]
        edit_refund_info(
            sandbox, restated["order_id"], network_fee=2 * fee, obtained=restated["obtained"] - fee
        )
        assert ("refund", oid) in world.expected_mismatches()
        assert ("refund", restated["order_id"]) not in world.expected_mismatches()

        quiet = run_sync(session, "incremental")  # only new or missing refund-infos
        assert run_items(store, quiet.run_id, "refund:%") == []
        assert stored(store, "refund", oid).version == 1

        full = run_sync(session)
        # Every REFUNDED order's refund-info was asked again; the two edits made new versions.
        assert run_items(store, full.run_id, "refund:%") == [f"refund:{o}" for o in refunded]
        assert full.new_snapshots == 2
        assert truth_problems(store, world) == []
        for order_id in (oid, restated["order_id"]):
            assert stored(store, "refund", order_id).version == 2
            entries = [e for e in store.iter_journal() if e.external_id == order_id]
            refund_entries = [e for e in entries if e.extra["object_kind"] == "refund"]
            # The correction: the first entry reversed, the new version's entry posted.
            assert [e.reverses_key is not None for e in refund_entries] == [False, True, False]
        found = alerts(store)
        assert set(found) == world.expected_mismatches()  # the planted one; no restatement
        alert = found[("refund", oid)]
        assert (alert.expected, alert.actual) == (
            broken["amount"] - broken["network_fee"],
            broken["obtained"] - broken["network_fee"],
        )
        assert alert.difference == broken["network_fee"]

        again = run_sync(session)  # nothing changed upstream: asked again, nothing appended
        assert (again.new_snapshots, again.journal_entries) == (0, 0)
        assert len(run_items(store, again.run_id, "refund:%")) == len(refunded)

        edit_refund_info(sandbox, oid, obtained=broken["obtained"])  # the provider fixes it
        run_sync(session)
        assert ("refund", oid) not in alerts(store)
        assert set(alerts(store)) == world.expected_mismatches()


def test_the_refund_missing_rule_judges_orders_no_run_re_reads(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(seed=24, orders=250)  # three pages of orders
    world = sandbox.world
    planted_ids = {subject for _, subject in world.expected_mismatches()}
    model = next(
        o
        for o in world.truth()["orders"]
        if o["status"] == "REFUNDED" and o["order_id"] not in planted_ids
    )
    # A REFUNDED order Aurpay has no refund-info for (unknown to the world: refund-info 404),
    # the oldest of all: listed on the last page, which an incremental walk never reaches.
    lonely = {**model, "order_id": "20241231000000000001", "create_time": "2024-12-31T00:00:00",
              "tx_id": None, "tx_hash": None}  # fmt: skip
    world.add_raw_order(lonely)
    settings = sandbox_settings(sandbox, ledger_url)

    with session_at(settings) as session:
        store = session.runtime.store
        run_sync(session)  # stored, asked for its refund-info (none), within the grace period
        stored(store, "order", lonely["order_id"])  # listed on the last page, and stored
        assert store.latest("aurpay", "refund", lonely["order_id"]) is None
        assert set(alerts(store)) == world.expected_mismatches()

    later = datetime.now(UTC) + timedelta(seconds=settings.tally_refund_grace_seconds, days=1)
    with session_at(settings, later) as session:
        store = session.runtime.store
        quiet = run_sync(session, "incremental")
        assert "orders#3" not in run_items(store, quiet.run_id, "orders#%")  # not re-read
        found = alerts(store)
        assert set(found) == world.expected_mismatches() | {("refund-missing", lonely["order_id"])}
        missing = found[("refund-missing", lonely["order_id"])]
        assert (missing.expected, missing.actual) == (Decimal(model["obtained"]), Decimal(0))


# --- Ebioro: a payment marked refunded without a refund


def test_refunded_without_refund_judges_payments_no_run_re_reads(ledger_url: str) -> None:
    config = EbioroSandboxConfig(seed=5, payments=150, mismatch_rate=0)
    with start_ebioro(config) as sandbox:
        world = sandbox.world
        payments = world.truth()["payments"]
        refunded = {r["payment"]["id"] for r in world.truth()["refunds"]}
        oldest = min(
            (p for p in payments if p["status"] == "paid" and p["id"] not in refunded),
            key=lambda p: p["createdAt"],
        )
        world.update_payment(oldest["id"], {"status": "refunded", "refunded": True})
        assert ("refunded-without-refund", oldest["id"]) in world.expected_mismatches()
        # The rule dates the refund by updatedAt (a silent edit leaves it): the first session's
        # clock stands just after the sandbox's last change, within the grace period of it.
        times = [first_timestamp(p, f) for p in payments for f in ("createdAt", "updatedAt")]
        first_now = max(t for t in times if t) + timedelta(hours=1)
        settings = load_settings(
            database_url=ledger_url,
            ebioro_base_url=sandbox.base_url,
            ebioro_public_key=SANDBOX_PUBLIC_KEY,
            ebioro_secret_key=SANDBOX_SECRET_KEY,
            ebioro_page_size=50,  # three pages of payments
            tally_refund_grace_seconds=int(timedelta(days=30).total_seconds()),
        )
        with session_at(settings, first_now) as session:
            store = session.runtime.store
            run_sync(session)
            assert stored(store, "payment", oldest["id"], "ebioro").payload["status"] == "refunded"
            assert ("refunded-without-refund", oldest["id"]) not in alerts(store)

        with session_at(settings, first_now + timedelta(days=31)) as session:
            store = session.runtime.store
            quiet = run_sync(session, "incremental")
            assert "payments#3" not in run_items(store, quiet.run_id, "payments#%")
            assert set(alerts(store)) == world.expected_mismatches()
            assert ("refunded-without-refund", oldest["id"]) in alerts(store)


def test_a_full_scan_converges_a_refunded_payment_its_refunds_do_not_show(
    ledger_url: str,
) -> None:
    """Ebioro's follow-up (a refund's payment) is re-fetched only when the refund's copy says
    the stored one is stale; a change the copy does not show converges through the payments
    feed, which every full scan reads in full."""
    config = EbioroSandboxConfig(seed=6, payments=120, mismatch_rate=0)
    with start_ebioro(config) as sandbox:
        world = sandbox.world
        settings = load_settings(
            database_url=ledger_url,
            ebioro_base_url=sandbox.base_url,
            ebioro_public_key=SANDBOX_PUBLIC_KEY,
            ebioro_secret_key=SANDBOX_SECRET_KEY,
            ebioro_page_size=50,
        )
        refund = min(world.truth()["refunds"], key=lambda r: r["payment"]["createdAt"])
        payment_id = refund["payment"]["id"]
        with session_at(settings) as session:
            store = session.runtime.store
            run_sync(session)
            assert set(alerts(store)) == world.expected_mismatches()
            before = stored(store, "payment", payment_id, "ebioro").payload
            # amount_received is not part of the state a refund's copy is compared on.
            world.update_payment(payment_id, {"amount_received": before["amount_received"] + 7})

            full = run_sync(session)
            assert run_items(store, full.run_id, "payment:%") == []  # no follow-up needed
            latest = stored(store, "payment", payment_id, "ebioro")
            assert latest.version == 2
            assert latest.payload == world.payment(payment_id)
            assert set(alerts(store)) == world.expected_mismatches()
            assert any(subject == payment_id for _, subject in alerts(store))
