"""Ebioro end to end: sandbox → sync → ledger → reconcile, beside Aurpay in the same ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger import jsonx
from ledger.alerts.store import AlertStore
from ledger.storage.verify import verify_store
from sandbox.aurpay import SandboxConfig
from sandbox.aurpay import start_sandbox as start_aurpay
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.server import start_sandbox as start_ebioro
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.app.cli import main
from worker.app.session import worker_session
from worker.config import Settings, load_settings
from worker.gateways.aurpay.settings import SANDBOX_API_KEY
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY as SANDBOX_EBIORO_PUBLIC_KEY
from worker.gateways.ebioro.settings import SANDBOX_SECRET_KEY as SANDBOX_EBIORO_SECRET_KEY
from worker.runtime import reconcile_plans
from worker.sync.once import sync_once


@pytest.fixture
def ebioro_world() -> Iterator[Any]:
    with start_ebioro(EbioroSandboxConfig(seed=3, payments=150, mismatch_rate=0.15)) as sandbox:
        yield sandbox


def _settings(url: str, ebioro: Any, aurpay: Any | None = None) -> Settings:
    extra = {}
    if aurpay is not None:
        extra = {"aurpay_base_url": aurpay.base_url, "aurpay_api_key": SANDBOX_API_KEY}
    return load_settings(
        database_url=url,
        ebioro_base_url=ebioro.base_url,
        ebioro_public_key=SANDBOX_EBIORO_PUBLIC_KEY,
        ebioro_secret_key=SANDBOX_EBIORO_SECRET_KEY,
        **extra,
    )


def _sync(settings: Settings, sources: list[str]) -> tuple[Any, ...]:
    with worker_session(settings) as session:
        report = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=sources,
            mode="full",
            timeout=120,
        )
        assert report.ok, report.failure()
        return report.summaries


def _canonical(payload: Any) -> bytes:
    return jsonx.canonical(payload)


def test_ebioro_ledger_equals_the_sandbox_and_alerts_equal_the_planted_set(
    ledger_url: str,
    ebioro_world: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = ebioro_world.world
    settings = _settings(ledger_url, ebioro_world)
    [first] = _sync(settings, ["ebioro"])
    assert first.new_snapshots > 0
    [second] = _sync(settings, ["ebioro"])
    assert (second.new_snapshots, second.journal_entries) == (0, 0)  # idempotent

    with worker_session(settings) as session:
        store = session.runtime.store
        truth = jsonx.loads(jsonx.dumps(world.truth()))
        stored = {
            (s.kind, s.external_id): _canonical(s.payload)
            for kind in ("payment", "refund")
            for s in store.iter_latest("ebioro", kind)
        }
        # The refunds feed lists refunds with their payment embedded; every object is exact.
        expected = {("payment", p["id"]): _canonical(p) for p in truth["payments"] if "id" in p}
        for key, payload in expected.items():
            assert stored.get(key) == payload, key
        assert verify_store(store).ok
        alerts = AlertStore(store.engine).list_alerts()
        found = {(a.rule, a.subject_id) for a in alerts}
        # none missing, none extra; a refunded payment without refund waits out the grace
        assert (
            world.held_by_grace() and found == world.expected_mismatches() - world.held_by_grace()
        )
        assert not found & world.dust_cases()
        # The legitimate cases (rounding, a partial payment, a refunded payment whose refund the
        # backfill read after it) never raised an alert, not even one resolved since.
        ever = AlertStore(store.engine).list_alerts(statuses=("open", "acknowledged", "resolved"))
        assert world.legit_cases() and not {a.subject_id for a in ever} & set(
            world.legit_cases().values()
        )
        assert all(len(a.evidence) >= 1 for a in alerts)  # one alert per cause, every check
        # A day later (the grace from first sight has passed): the full planted set, one to one.
        later = datetime.now(UTC) + timedelta(seconds=settings.tally_refund_grace_seconds + 1)
        context = ReconcileContext.from_settings(
            store, settings, lambda: later, reconcile_plans(settings)
        )
        reconcile(context)
        after = {(a.rule, a.subject_id) for a in AlertStore(store.engine).list_alerts()}
        assert after == world.expected_mismatches()

    monkeypatch.setenv("DATABASE_URL", ledger_url)
    capsys.readouterr()  # drop what the sync printed
    assert main(["export", "journal", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and {r["source"] for r in rows} == {"ebioro"}


def test_both_sources_sync_side_by_side_into_one_ledger(
    ledger_url: str,
    ebioro_world: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with start_aurpay(SandboxConfig(seed=5, orders=120)) as aurpay:
        settings = _settings(ledger_url, ebioro_world, aurpay)
        summaries = _sync(settings, ["aurpay", "ebioro"])
        assert {s.source for s in summaries} == {"aurpay", "ebioro"}
        expected = aurpay.world.expected_mismatches() | (
            ebioro_world.world.expected_mismatches() - ebioro_world.world.held_by_grace()
        )
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    capsys.readouterr()  # drop what the sync printed
    assert main(["alerts", "--format", "json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert {(a["rule"], a["subject_id"]) for a in alerts} == expected
    assert {a["source"] for a in alerts} == {"aurpay", "ebioro"}  # alerts name their source
    assert main(["export", "snapshots", "--format", "jsonl"]) == 0
    sources = {json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()}
    assert sources == {"aurpay", "ebioro"}  # exports name their source
    assert main(["verify"]) == 0
