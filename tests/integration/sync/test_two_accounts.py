"""Two Aurpay accounts (two stores, two sandboxes with different seeds and credentials) synced
side by side into one ledger: each source holds exactly its own sandbox's truth, its own rejects,
runs, metrics and alerts, and its own callback route re-fetches into it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.alerts.store import AlertStore
from ledger.storage.verify import verify_store
from sandbox.aurpay import RunningSandbox, SandboxCredentials
from tests.helpers.ledger_view import quarantined, truth_problems
from tests.helpers.sandbox import UNPACED_RPS, refundable_orders
from worker import metrics
from worker.app.session import WorkerSession, worker_session
from worker.app.wiring import build_callback_server
from worker.config import Settings, load_settings
from worker.gateways.aurpay.settings import (
    SANDBOX_API_KEY,
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)
from worker.inbound.server import callback_path
from worker.sync.once import SyncReport, sync_once

SandboxFactory = Callable[..., RunningSandbox]
SOURCES = ("aurpay", "aurpay-eu")
EU = SandboxCredentials(
    api_key="eu-store-api-key-0001",
    callback_token="EUSTORECALLBACKTOKEN00000000000000000000000000",
    callback_secret="eu-store-callback-secret",
)


@dataclass
class Stores:
    """The two sandboxes by source name, and settings syncing both into one ledger."""

    sandboxes: dict[str, RunningSandbox]
    settings: Settings


@pytest.fixture
def stores(ledger_url: str, sandbox_factory: SandboxFactory) -> Iterator[Stores]:
    us = sandbox_factory(seed=41, orders=90, mismatch_rate=0.2, rate_invalid_record=0.05)
    eu = sandbox_factory(
        seed=42, orders=70, mismatch_rate=0.2, rate_invalid_record=0.05, credentials=EU
    )
    settings = load_settings(
        database_url=ledger_url,
        tally_sources=",".join(SOURCES),
        aurpay_base_url=us.base_url,
        aurpay_api_key=SANDBOX_API_KEY,
        aurpay_callback_token=SANDBOX_CALLBACK_TOKEN,
        aurpay_callback_secret=SANDBOX_CALLBACK_SECRET,
        aurpay_page_size=20,
        aurpay_requests_per_second=UNPACED_RPS,
        aurpay_eu_base_url=eu.base_url,
        aurpay_eu_api_key=EU.api_key,
        aurpay_eu_callback_token=EU.callback_token,
        aurpay_eu_callback_secret=EU.callback_secret,
        aurpay_eu_page_size=15,
        aurpay_eu_requests_per_second=UNPACED_RPS,
    )
    yield Stores({"aurpay": us, "aurpay-eu": eu}, settings)


def _sync_both(session: WorkerSession) -> SyncReport:
    report = sync_once(
        session.runtime,
        session.actors,
        session.worker,
        sources=list(SOURCES),
        mode="full",
        timeout=120,
    )
    assert report.ok, report.failure()
    return report


def _requests(source: str) -> float:
    """HTTP requests the clients counted under ``source`` (any endpoint, any status)."""
    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "tally_source_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("source") == source
    )


def test_two_accounts_hold_exactly_their_own_truth_rejects_runs_and_alerts(
    stores: Stores,
) -> None:
    us, eu = stores.sandboxes["aurpay"], stores.sandboxes["aurpay-eu"]
    assert us.world.expected_mismatches() and eu.world.expected_mismatches()
    requests_before = {source: _requests(source) for source in SOURCES}

    with worker_session(stores.settings) as session:
        store = session.runtime.store
        report = _sync_both(session)

        for source, sandbox in stores.sandboxes.items():
            assert truth_problems(store, sandbox.world, source=source) == [], source
        by_source = {s.source: s for s in report.summaries}
        assert set(by_source) == set(SOURCES)
        for source, summary in by_source.items():
            assert summary.run_id.startswith(f"{source}-full-")
            assert summary.rejected == len(stores.sandboxes[source].world.invalid_records())
        snapshots = Counter(s.source for s in store.iter_snapshots())
        assert set(snapshots) == set(SOURCES)
        assert snapshots["aurpay"] == by_source["aurpay"].new_snapshots
        assert snapshots["aurpay-eu"] == by_source["aurpay-eu"].new_snapshots
        assert {e.source for e in store.iter_journal()} == set(SOURCES)
        for entry in store.iter_journal():  # each store's balance is its own asset account
            assets = {p.account.split(":")[1] for p in entry.postings if p.account[:7] == "assets:"}
            owned = {
                p.account.split(":")[2]
                for p in entry.postings
                if p.account[:16] == "assets:suspense:"
            }
            assert assets <= {entry.source, "suspense"} and owned <= {entry.source}, entry
        assert Counter(row["source"] for row in quarantined(store.engine)) == {
            source: len(sandbox.world.invalid_records())
            for source, sandbox in stores.sandboxes.items()
        }
        assert verify_store(store).ok
        for source in SOURCES:  # each account's client reports under its own name
            assert _requests(source) > requests_before[source]

        # sync_once reconciled: every alert is scoped to the account that planted it.
        alerts = AlertStore(store.engine).list_alerts()
        for source, sandbox in stores.sandboxes.items():
            found = {(a.rule, a.subject_id) for a in alerts if a.source == source}
            assert found == sandbox.world.expected_mismatches(), source
        assert {a.source for a in alerts} == set(SOURCES)

        second = _sync_both(session)
        assert [(s.new_snapshots, s.journal_entries) for s in second.summaries] == [(0, 0)] * 2


def test_each_account_is_refetched_through_its_own_callback_route(stores: Stores) -> None:
    eu = stores.sandboxes["aurpay-eu"]
    with worker_session(stores.settings) as session:
        store = session.runtime.store
        _sync_both(session)
        server = build_callback_server(session.runtime, session.actors, "127.0.0.1", 0)
        server.start()
        try:
            eu.world.set_callbacks(server.url + callback_path("aurpay-eu"))
            order_id = refundable_orders(eu.world)[0]
            eu.world.refund(order_id)
            assert eu.world.wait_for_deliveries(1, timeout=10)
            session.worker.join(timeout=30)
        finally:
            server.stop()

        assert [(d.order_id, d.status) for d in eu.world.deliveries()] == [(order_id, 200)]
        order = store.latest("aurpay-eu", "order", order_id)
        assert order is not None and order.payload["status"] == "REFUNDED"
        assert store.latest("aurpay-eu", "refund", order_id) is not None
        assert truth_problems(store, eu.world, source="aurpay-eu") == []
        assert truth_problems(store, stores.sandboxes["aurpay"].world, source="aurpay") == []


def test_a_source_with_the_other_stores_credentials_fails_alone(
    ledger_url: str, sandbox_factory: SandboxFactory
) -> None:
    us = sandbox_factory(seed=43, orders=30)
    eu = sandbox_factory(seed=44, orders=30, credentials=EU)
    settings = load_settings(
        database_url=ledger_url,
        tally_sources=",".join(SOURCES),
        aurpay_base_url=us.base_url,
        aurpay_api_key=SANDBOX_API_KEY,
        aurpay_eu_base_url=eu.base_url,
        aurpay_eu_api_key=SANDBOX_API_KEY,  # the US store's key: the EU store refuses it
        aurpay_eu_in_call_retries=0,
    )
    with worker_session(settings) as session:
        report = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=list(SOURCES),
            mode="full",
            timeout=60,
        )
        store = session.runtime.store
        errors: dict[str, Any] = {s.source: s.error for s in report.summaries}
        assert errors["aurpay"] is None and errors["aurpay-eu"]
        assert truth_problems(store, us.world, source="aurpay") == []
        assert not list(store.iter_latest("aurpay-eu", "order"))
