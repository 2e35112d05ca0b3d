"""A third gateway defined only in the tests (``tests/gateways/toy``) goes through sync, journal,
reconcile, alerts, exports and recovery with one registry line and no change to the engine, the
ledger or the CLI: its source is configured by ``TOY_*`` variables, the runtime builds it from
the registry, and the CLI's handlers read it out with the same settings."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger import jsonx
from ledger.alerts.store import AlertStore
from ledger.journal.balances import fold_balances
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from ledger.storage.verify import verify_store
from sandbox.kit.http import RunningSandbox
from tests.gateways import toy
from tests.gateways.toy.server import ToyConfig, ToyWorld, start_toy_server
from tests.helpers.sandbox import UNPACED_RPS
from worker.app.cli import build_parser
from worker.app.session import WorkerSession, worker_session
from worker.broker import in_flight
from worker.config import Settings, load_settings
from worker.gateways.contract import FollowUp
from worker.gateways.registry import REGISTRY
from worker.sync.once import sync_once
from worker.sync.recovery import Recovery
from worker.sync.state import RunSummary

GATEWAYS = REGISTRY.with_gateway(toy.GATEWAY)  # the one registry line
SOURCE = "toy"
KINDS = ("invoice", "credit", "settlement")
ToyServer = RunningSandbox[ToyConfig, ToyWorld]


@pytest.fixture
def server() -> Iterator[ToyServer]:
    with start_toy_server(ToyConfig(seed=7, invoices=57)) as running:
        yield running


@pytest.fixture
def settings(ledger_url: str, server: ToyServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The toy source, configured as any gateway's: ``TALLY_SOURCES`` and ``<GATEWAY>_*``."""
    monkeypatch.setenv("TALLY_SOURCES", SOURCE)
    monkeypatch.setenv("TOY_BASE_URL", server.base_url)
    monkeypatch.setenv("TOY_API_KEY", server.config.api_key)
    monkeypatch.setenv("TOY_PAGE_SIZE", "10")  # 57 invoices: six pages
    monkeypatch.setenv("TOY_REQUESTS_PER_SECOND", str(UNPACED_RPS))
    return load_settings(gateways=GATEWAYS, database_url=ledger_url)


def _sync(session: WorkerSession, mode: str = "full") -> RunSummary:
    report = sync_once(
        session.runtime, session.actors, session.worker, sources=[SOURCE], mode=mode, timeout=60
    )
    assert report.ok, report.failure()
    (summary,) = report.summaries
    assert summary.source == SOURCE
    return summary


def _ledger_objects(store: LedgerStore) -> dict[tuple[str, str], bytes]:
    return {
        (kind, s.external_id): jsonx.canonical(s.payload)
        for kind in KINDS
        for s in store.iter_latest(SOURCE, kind)
    }


def _truth(world: ToyWorld) -> dict[tuple[str, str], bytes]:
    return {key: jsonx.canonical(obj) for key, obj in world.truth().items()}


def _expected_balances(world: ToyWorld) -> dict[tuple[str, str], Decimal]:
    """What the books must say, from the server's truth alone (see toy/postings.py)."""
    totals: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for invoice in world.invoices.values():
        if invoice["status"] == "paid":
            currency, amount, fee = invoice["currency"], invoice["amount"], invoice["fee"]
            totals["income:sales", currency] -= amount
            totals["expenses:gateway-fees", currency] += fee
            totals[f"assets:{SOURCE}:{currency}", currency] += amount - fee
    for credit in world.credits.values():
        totals["income:refunds", credit["currency"]] += credit["amount"]
        totals[f"assets:{SOURCE}:{credit['currency']}", credit["currency"]] -= credit["amount"]
    for settlement in world.settlements.values():
        currency, net = settlement["currency"], settlement["net"]
        totals[f"assets:{SOURCE}:{currency}", currency] -= net
        totals[f"assets:bank:{currency}", currency] += net
    return {key: amount for key, amount in totals.items() if amount != 0}


def _cli(settings: Settings, *argv: str) -> int:
    """One ``tally`` command, as ``worker.app.cli.main`` runs it, with these settings."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args, settings) or 0)


def test_a_third_gateway_syncs_posts_reconciles_and_exports(
    settings: Settings,
    server: ToyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bean_check: Any,
) -> None:
    world = server.world
    assert set(settings.sources) == {SOURCE}
    with worker_session(settings) as session:
        store = session.runtime.store
        first = _sync(session)

        # The ledger holds exactly the server's truth, settlements (the follow-up) included.
        assert _ledger_objects(store) == _truth(world)
        assert list(session.runtime.sources[SOURCE].pending_follow_ups(store)) == []
        assert (first.new_snapshots, first.rejected) == (len(world.truth()), 0)
        assert {s.source for s in store.iter_snapshots()} == {SOURCE}

        # Every entry balances per commodity, and the books match the truth.
        entries = list(store.iter_journal())
        assert first.journal_entries == len(entries) > 0
        for entry in entries:
            sums: defaultdict[str, Decimal] = defaultdict(Decimal)
            for posting in entry.postings:
                sums[posting.currency] += posting.amount
            assert set(sums.values()) == {0}, entry
        balances = {k: v for k, v in fold_balances(entries).items() if v != 0}
        assert balances == _expected_balances(world)
        assert {currency for _, currency in balances} == {"EUR", "USD"}
        assert verify_store(store).ok

        # sync_once reconciled: exactly the planted violation, scoped to the toy source.
        alerts = AlertStore(store.engine).list_alerts()
        assert {(a.source, a.rule, a.subject_id) for a in alerts} == {
            (SOURCE, rule, subject) for rule, subject in world.planted
        }

        head = store.head()
        second = _sync(session)
        assert (second.new_snapshots, second.journal_entries, second.rejected) == (0, 0, 0)
        incremental = _sync(session, "incremental")
        assert (incremental.new_snapshots, incremental.journal_entries) == (0, 0)
        assert store.head() == head

    # The CLI's handlers, given the same settings: a full reconcile keeps the one alert, status
    # shows the source …
    capsys.readouterr()
    assert _cli(settings, "reconcile", "--all") == 0
    summary = capsys.readouterr().out
    # Judged by the toy plan: every invoice, and again each invoice its credits name.
    judged = len(world.invoices) + len({c["invoice_id"] for c in world.credits.values()})
    assert f"checks={judged} opened=0 updated=0 resolved=0 live_alerts=1" in summary
    store = open_ledger(settings.database_url, settings.precision_table())
    try:
        (seen,) = AlertStore(store.engine).list_alerts()  # the same alert, seen again
        (opened,) = alerts
        assert (seen.id, seen.revision, seen.fingerprint) == (opened.id, 1, opened.fingerprint)
        assert seen.last_seen_at > opened.last_seen_at
    finally:
        store.close()
    assert _cli(settings, "status") == 0  # ready, the toy source synced, its alert counted
    status = capsys.readouterr().out
    assert f"{SOURCE} synced" in status and "credits-exceed-invoice 1" in status

    # … and every export carries the toy source's entries.
    postings = sum(len(e.postings) for e in entries)
    snapshots_file = tmp_path / "snapshots.jsonl"
    assert _cli(settings, "export", "snapshots", "--output", str(snapshots_file)) == 0
    exported = [json.loads(line) for line in snapshots_file.read_text().splitlines()]
    assert {(r["kind"], r["external_id"]) for r in exported} == set(world.truth())
    assert {r["source"] for r in exported} == {SOURCE}

    jsonl_file = tmp_path / "journal.jsonl"
    assert _cli(settings, "export", "journal", "--output", str(jsonl_file)) == 0
    rows = [json.loads(line) for line in jsonl_file.read_text().splitlines()]
    assert len(rows) == postings and {r["source"] for r in rows} == {SOURCE}

    csv_file = tmp_path / "journal.csv"
    assert _cli(settings, "export", "journal", "--format", "csv", "--output", str(csv_file)) == 0
    csv_rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8"))))
    # the accounting CSV: entry keys start with the source, ``reference`` is the gateway's id
    assert len(csv_rows) == postings and {r["entry"].split(":")[0] for r in csv_rows} == {SOURCE}
    assert {r["reference"] for r in csv_rows} >= {i for _, i in world.planted}

    beancount_file = tmp_path / "ledger.beancount"
    assert _cli(settings, "export", "beancount", "--output", str(beancount_file)) == 0
    text = beancount_file.read_text(encoding="utf-8")
    checked = bean_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for account in ("Assets:Toy:EUR", "Assets:Toy:USD", "Assets:Bank:EUR", "Income:Sales"):
        assert f"open {account}" in text
    assert text.count("Toy invoice ") == sum(
        1 for i in world.invoices.values() if i["status"] == "paid"
    )


def test_recovery_fetches_the_settlements_a_killed_sync_never_asked_for(
    settings: Settings, server: ToyServer
) -> None:
    """Invoices stored without their follow-ups (as when a process dies between a page's commit
    and its sends): the toy source tells from the ledger alone which settlements are missing,
    and one recovery pass fetches them through the engine."""
    world = server.world
    paid = {i for i, invoice in world.invoices.items() if invoice["status"] == "paid"}
    with worker_session(settings) as session:
        rt = session.runtime
        source = rt.sources[SOURCE]
        number, last = 1, 1
        while number <= last:
            page = source.fetch_page("invoices", number)
            rt.store.append(page.records, observed_at=rt.now())
            number, last = number + 1, page.max_page
        pending = {p.follow_up for p in source.pending_follow_ups(rt.store)}
        assert pending == {FollowUp("settlement", i) for i in paid}

        recovery = Recovery(
            rt,
            session.actors,
            in_flight=lambda queue: in_flight(session.broker, queue),
            full_tick_fired=lambda now: False,  # no full scan: only the follow-ups
        )
        report = recovery.run(rt.now())
        assert (report.pending, report.sent) == ({SOURCE: len(paid)}, len(paid))
        session.worker.join(timeout=30)

        assert list(source.pending_follow_ups(rt.store)) == []
        settlements = {k: v for k, v in _truth(world).items() if k[0] == "settlement"}
        stored = {k: v for k, v in _ledger_objects(rt.store).items() if k[0] == "settlement"}
        assert stored == settlements
        assert recovery.run(rt.now()).pending == {SOURCE: 0}
