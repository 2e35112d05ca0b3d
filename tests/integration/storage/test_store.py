"""LedgerStore on real SQLite and PostgreSQL: idempotent appends, versions, exact payloads,
quarantine and rollback in one transaction, journal planning, streaming reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import jsonx
from ledger.errors import InvalidEntry
from ledger.journal.postings import UnpostableSnapshot
from ledger.model import JournalEntry, Posting, RawRecord, Rejected, Snapshot
from ledger.precision import PrecisionTable
from ledger.storage.store import LedgerStore
from ledger.storage.types import Money
from ledger.storage.verify import verify_store

NOW = datetime(2024, 8, 6, 7, 19, 26, 123456, tzinfo=UTC)
OpenStore = Callable[..., LedgerStore]


def order(
    order_id: str, status: str = "PENDING", amount: str = "19.0012", **extra: Any
) -> RawRecord:
    payload = {"order_id": order_id, "status": status, "currency": "USDC-TRC20", "amount": amount}
    return RawRecord("aurpay", "order", order_id, {**payload, **extra})


def toy_planner(
    snapshot: Snapshot,
    effective: JournalEntry | None,
    precision: PrecisionTable,
    history: object = None,
) -> list[JournalEntry]:
    """A paid (SUCCESS) order posts its amount; any other status reverses what was posted."""
    payload = snapshot.payload
    currency, amount = payload["currency"], Decimal(str(payload["amount"]))
    desired: tuple[Posting, ...] = ()
    if payload["status"] == "SUCCESS":
        desired = (
            Posting("assets:aurpay", currency, amount),
            Posting("income:sales", currency, -amount),
        )
    current = effective.postings if effective else ()
    if desired == current:
        return []

    def entry(key: str, postings: tuple[Posting, ...], reverses: str | None = None) -> JournalEntry:
        return JournalEntry(
            key=key,
            date=snapshot.observed_at,
            description=f"order {snapshot.external_id} {payload['status']}",
            source=snapshot.source,
            external_id=snapshot.external_id,
            snapshot_seq=snapshot.seq,
            postings=postings,
            reverses_key=reverses,
        )

    planned = []
    if effective is not None:
        negated = tuple(Posting(p.account, p.currency, -p.amount) for p in effective.postings)
        planned.append(entry(f"{effective.key}:reversal", negated, effective.key))
    if desired:
        key = f"{snapshot.source}:order:{snapshot.external_id}:v{snapshot.version}"
        planned.append(entry(key, desired))
    return planned


def test_same_records_twice_appends_nothing(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url, toy_planner)
    records = [order("1", "SUCCESS"), order("2")]
    first = store.append(records, observed_at=NOW)
    head = store.head()
    second = store.append(records, observed_at=NOW + timedelta(minutes=1))
    assert (len(first.new_snapshots), first.journal_entries) == (2, 1)
    assert (second.new_snapshots, second.journal_entries, second.unchanged) == ((), 0, 2)
    assert store.head() == head
    assert store.counts()["snapshots"] == 2


def test_status_changes_make_versions(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url)
    for status in ("PENDING", "SUCCESS", "REFUNDED", "REFUNDED"):
        store.append([order("A", status)], observed_at=NOW)
    latest = store.latest("aurpay", "order", "A")
    assert latest is not None and (latest.version, latest.payload["status"]) == (3, "REFUNDED")
    assert [s.version for s in store.iter_snapshots()] == [1, 2, 3]
    store.append([order("A", "SUCCESS")], observed_at=NOW)  # back to an older content: new version
    assert store.latest("aurpay", "order", "A").version == 4  # type: ignore[union-attr]


def test_one_batch_dedupes_and_versions_in_order(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url)
    batch = [order("A"), order("A"), order("A", "SUCCESS"), order("B")]
    result = store.append(batch, observed_at=NOW)
    assert [(s.external_id, s.version) for s in result.new_snapshots] == [
        ("A", 1),
        ("A", 2),
        ("B", 1),
    ]
    assert result.unchanged == 1
    assert [s.seq for s in result.new_snapshots] == [1, 2, 3]


def test_payload_round_trips_exactly(ledger_url: str, open_store: OpenStore) -> None:
    text = (
        '{"order_id":"X","amount":7.6883,"fee":"0.00102549","obtained":"1234.123456789012345678",'
        '"big":1234.123456789012345678,"zero":100.0,"name":"café ₿","nested":{"b":[1,2.50]}}'
    )
    store = open_store(ledger_url)
    store.append([RawRecord("aurpay", "order", "X", jsonx.loads(text))], observed_at=NOW)
    (snapshot,) = store.iter_snapshots()
    assert jsonx.dumps(snapshot.payload) == text
    assert snapshot.payload["fee"] == "0.00102549"
    assert snapshot.payload["amount"] == Decimal("7.6883")
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT payload FROM ledger_snapshot")).scalar_one()
    assert stored == text
    assert snapshot.observed_at == NOW


def test_quarantine_is_written_in_the_same_transaction(
    ledger_url: str, open_store: OpenStore
) -> None:
    store = open_store(ledger_url)
    rejected = [
        Rejected("aurpay", "order", "amount: not a decimal", {"amount": "abc"}, "9"),
        Rejected("aurpay", "order", "invalid JSON", '{"order_id": "trunc'),
    ]
    result = store.append([order("1")], observed_at=NOW, rejected=rejected, run_id="run-1")
    assert (len(result.new_snapshots), result.quarantined) == (1, 2)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT external_id, reason, raw, run_id FROM sync_quarantine ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("9", "amount: not a decimal", '{"amount":"abc"}', "run-1"),
        (None, "invalid JSON", '{"order_id": "trunc', "run-1"),
    ]


def test_the_same_bad_record_is_quarantined_once(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url)
    bad = Rejected("aurpay", "order", "amount: not a decimal", {"amount": "abc"}, "9")
    assert store.append([], observed_at=NOW, rejected=[bad, bad], run_id="r1").quarantined == 1
    assert store.append([], observed_at=NOW, rejected=[bad], run_id="r2").quarantined == 0
    changed = Rejected("aurpay", "order", "amount: not a decimal", {"amount": "abd"}, "9")
    assert store.append([], observed_at=NOW, rejected=[changed, bad]).quarantined == 1
    assert store.counts()["quarantined"] == 2


def _exploding(
    snapshot: Snapshot, effective: JournalEntry | None, p: PrecisionTable, *_: object
) -> list:
    if snapshot.external_id == "2":
        raise RuntimeError("planner bug")
    return toy_planner(snapshot, effective, p)


def _unbalanced(
    snapshot: Snapshot, effective: JournalEntry | None, p: PrecisionTable, *_: object
) -> list:
    (entry,) = toy_planner(snapshot, effective, p)
    return [JournalEntry(**{**entry.__dict__, "postings": entry.postings[:1]})]


@pytest.mark.parametrize(
    ("planner", "error"), [(_exploding, RuntimeError), (_unbalanced, InvalidEntry)]
)
def test_a_failed_append_leaves_nothing(
    ledger_url: str, open_store: OpenStore, planner: Any, error: type[Exception]
) -> None:
    store = open_store(ledger_url, planner)
    before = (store.head(), store.counts())
    bad = [order("1", "SUCCESS"), order("2", "SUCCESS")]
    with pytest.raises(error):
        store.append(bad, observed_at=NOW, rejected=[Rejected("aurpay", "order", "x", {})])
    assert (store.head(), store.counts()) == before


def test_journal_plans_against_the_effective_entry(ledger_url: str, open_store: OpenStore) -> None:
    seen: list[str | None] = []

    def planner(s: Snapshot, effective: JournalEntry | None, p: PrecisionTable, h: object) -> list:
        seen.append(effective.key if effective else None)
        return toy_planner(s, effective, p)

    store = open_store(ledger_url, planner)
    store.append([order("1", "SUCCESS")], observed_at=NOW)
    store.append([order("1", "REFUNDED"), order("1", "SUCCESS", amount="20")], observed_at=NOW)
    assert seen == [None, "aurpay:order:1:v1", None]
    entries = list(store.iter_journal())
    assert [(e.seq, e.key, e.reverses_key) for e in entries] == [
        (2, "aurpay:order:1:v1", None),
        (4, "aurpay:order:1:v1:reversal", "aurpay:order:1:v1"),
        (6, "aurpay:order:1:v3", None),
    ]
    assert entries[1].postings == (
        Posting("assets:aurpay", "USDC-TRC20", Decimal("-19.0012")),
        Posting("income:sales", "USDC-TRC20", Decimal("19.0012")),
    )
    assert entries[2].extra == {"object_kind": "order"}
    assert [e.key for e in store.iter_journal(since_seq=2, batch=1)] == [
        "aurpay:order:1:v1:reversal",
        "aurpay:order:1:v3",
    ]
    assert list(store.iter_journal(until=NOW - timedelta(seconds=1))) == []


def test_an_existing_key_is_not_appended_twice(ledger_url: str, open_store: OpenStore) -> None:
    def fixed_key(
        s: Snapshot, effective: JournalEntry | None, p: PrecisionTable, *_: object
    ) -> list:
        (entry,) = toy_planner(s, None, p)
        return [JournalEntry(**{**entry.__dict__, "key": "same-key"})]

    store = open_store(ledger_url, fixed_key)
    first = store.append([order("1", "SUCCESS")], observed_at=NOW)
    second = store.append([order("1", "SUCCESS", amount="5")], observed_at=NOW)
    assert (first.journal_entries, second.journal_entries) == (1, 0)
    assert len(second.new_snapshots) == 1


def test_unpostable_snapshot_is_kept_and_quarantined(
    ledger_url: str, open_store: OpenStore
) -> None:
    def fussy(s: Snapshot, effective: JournalEntry | None, p: PrecisionTable, *_: object) -> list:
        if s.external_id == "bad":
            raise UnpostableSnapshot("amount: not a decimal amount")
        return toy_planner(s, effective, p)

    store = open_store(ledger_url, fussy)
    result = store.append([order("bad", "SUCCESS"), order("ok", "SUCCESS")], observed_at=NOW)
    assert (len(result.new_snapshots), result.journal_entries, result.quarantined) == (2, 1, 1)
    again = store.append([order("bad", "SUCCESS")], observed_at=NOW)
    assert (again.unchanged, again.quarantined) == (1, 0)


def test_fees_finer_than_the_chain_are_posted_exactly(
    ledger_url: str, open_store: OpenStore
) -> None:
    # An 18-decimal token's fee with 21 places occurs in the wild: the ledger keeps every digit.
    store = open_store(ledger_url, toy_planner)
    fine = "0.000289722595270832933"
    result = store.append([order("1", "SUCCESS", amount=fine)], observed_at=NOW)
    assert (result.journal_entries, result.quarantined) == (1, 0)
    [entry] = store.iter_journal()
    assert entry.postings[0].amount == Decimal(fine)


def test_amount_finer_than_36_places_is_refused_but_payload_kept(
    ledger_url: str, open_store: OpenStore
) -> None:
    store = open_store(ledger_url, toy_planner)
    fine = "0." + "0" * 36 + "1"  # 37 places
    result = store.append([order("1", "SUCCESS", amount=fine)], observed_at=NOW)
    assert (result.journal_entries, result.quarantined) == (0, 1)
    assert store.latest("aurpay", "order", "1").payload["amount"] == fine  # type: ignore[union-attr]
    with store.engine.connect() as conn:
        reason = conn.execute(sa.text("SELECT reason FROM sync_quarantine")).scalar_one()
    assert "37 decimal places" in reason


def test_money_keeps_18_places_on_both_databases(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url, toy_planner)
    amounts = ["0.000000000000000001", "1234.123456789012345678", "100.50", "-0"]
    store.append(
        [order(str(i), "SUCCESS", amount=a) for i, a in enumerate(amounts)], observed_at=NOW
    )
    got = [e.postings[0].amount for e in store.iter_journal()]
    assert got == [Decimal(a) for a in amounts]
    assert [str(a) for a in got] == ["1E-18", "1234.123456789012345678", "100.5", "0"]


def test_floats_and_naive_times_are_refused(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url)
    with pytest.raises(InvalidEntry, match="float"):
        store.append([RawRecord("aurpay", "order", "1", {"amount": 7.6883})], observed_at=NOW)
    with pytest.raises(ValueError, match="naive"):
        store.append([order("1")], observed_at=NOW.replace(tzinfo=None))
    with pytest.raises(TypeError, match="Decimal"):
        Money().process_bind_param(1.5, store.engine.dialect)  # type: ignore[arg-type]
    assert store.counts()["snapshots"] == 0


def test_reads_stream_in_pages(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url)
    store.append([order(f"{i:02}") for i in range(10)], observed_at=NOW)
    store.append([order(f"{i:02}", "SUCCESS") for i in range(0, 10, 2)], observed_at=NOW)
    store.append([RawRecord("aurpay", "refund", "00", {"amount": "1"})], observed_at=NOW)
    assert [s.seq for s in store.iter_snapshots(batch=3)] == list(range(1, 17))
    assert [s.seq for s in store.iter_snapshots(12, batch=2)] == [13, 14, 15, 16]
    assert len(list(store.iter_snapshots(kind="refund", batch=4))) == 1
    latest = list(store.iter_latest("aurpay", "order", batch=3))
    assert [(s.external_id, s.version) for s in latest] == [
        (f"{i:02}", 2 if i % 2 == 0 else 1) for i in range(10)
    ]
    many = store.latest_many("aurpay", "order", ["03", "04", "missing"])
    assert {k: v.version for k, v in many.items()} == {"03": 1, "04": 2}
    assert store.counts() == {
        "snapshots": 16,
        "journal_entries": 0,
        "postings": 0,
        "quarantined": 0,
    }


def test_the_journal_with_the_given_derivers_is_the_default(
    ledger_url: str, aurpay_fixture: Any
) -> None:
    from ledger.storage.engine import make_engine
    from tests.helpers.books import DERIVERS

    listed: Mapping[str, Any] = aurpay_fixture("orders-list-response.partial.json")["data"]["data"][
        0
    ]
    store = LedgerStore(make_engine(ledger_url), PrecisionTable(), derivers=DERIVERS)
    try:
        oid = listed["order_id"]
        for status in ("PENDING", "SUCCESS"):
            record = RawRecord("aurpay", "order", oid, {**listed, "status": status, "fee": "0.1"})
            store.append([record], observed_at=NOW)
        (entry,) = store.iter_journal()
        assert entry.snapshot_seq == 2
        totals: dict[str, Decimal] = {}
        for p in entry.postings:
            totals[p.currency] = totals.get(p.currency, Decimal(0)) + p.amount
        assert set(totals.values()) == {Decimal(0)}
    finally:
        store.close()


def test_without_derivers_snapshots_are_kept_and_their_journal_quarantined(
    ledger_url: str,
) -> None:
    from ledger.storage.engine import make_engine

    store = LedgerStore(make_engine(ledger_url), PrecisionTable())  # fine for reading
    try:
        result = store.append([order("o1", "SUCCESS")], observed_at=NOW)
        assert (len(result.new_snapshots), result.journal_entries, result.quarantined) == (1, 0, 1)
        with store.engine.connect() as conn:
            reason = conn.execute(sa.text("SELECT reason FROM sync_quarantine")).scalar_one()
        assert reason == "unpostable: no journal deriver for aurpay/order"
    finally:
        store.close()


def test_a_planner_and_derivers_together_are_refused(ledger_url: str) -> None:
    from ledger.storage.engine import make_engine

    engine = make_engine(ledger_url)
    try:
        with pytest.raises(ValueError, match="not both"):
            LedgerStore(engine, PrecisionTable(), planner=toy_planner, derivers={})
    finally:
        engine.dispose()


HISTORY = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["PENDING", "SUCCESS", "REFUNDED"])),
    max_size=12,
)


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerStore]:
    """One SQLite ledger for every example of the model test (each uses its own source)."""
    from ledger.storage.engine import make_engine, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('model')}/model.db"
    upgrade(url)
    store = LedgerStore(make_engine(url), PrecisionTable(), planner=toy_planner)
    yield store
    store.close()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(history=HISTORY, page=st.integers(1, 5))
def test_store_matches_an_in_memory_model(
    model_store: LedgerStore, history: list[tuple[str, str]], page: int
) -> None:
    """Any history cut into any pages gives the versions and entries a plain model predicts;
    appending the final states again adds nothing; the chain stays intact."""
    store = model_store
    source = f"src-{store.head()[0]}-{len(history)}-{page}"
    records = [
        RawRecord(source, "order", oid, order(oid, status).payload) for oid, status in history
    ]
    statuses: dict[str, list[str]] = {}  # the model: each object's distinct successive states
    entries = 0
    for oid, status in history:
        previous = statuses.get(oid, [""])[-1]
        if previous != status:
            entries += (previous == "SUCCESS") != (status == "SUCCESS")  # a sale or its reversal
            statuses.setdefault(oid, []).append(status)
    appended = 0
    for start in range(0, len(records), page):
        result = store.append(records[start : start + page], observed_at=NOW)
        appended += len(result.new_snapshots) + result.journal_entries
    assert appended == sum(map(len, statuses.values())) + entries
    stored: dict[str, list[tuple[int, str]]] = {}
    for snapshot in store.iter_snapshots(source=source):
        stored.setdefault(snapshot.external_id, []).append(
            (snapshot.version, snapshot.payload["status"])
        )
    assert stored == {oid: list(enumerate(states, 1)) for oid, states in statuses.items()}
    final = list({r.external_id: r for r in records}.values())  # each object's latest state
    again = store.append(final, observed_at=NOW)
    assert (again.new_snapshots, again.journal_entries, again.unchanged) == ((), 0, len(final))
    assert verify_store(store).ok
