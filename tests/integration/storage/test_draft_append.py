"""An append laid out before the head lock (a draft) ends exactly as if laid out under it.

Each test lets another writer append between the draft and the lock, then compares the ledger
with one built by the same two appends in that order, one after the other, without drafts (on
SQLite; the chain's bytes do not depend on the database). It also checks which way the append
went: the draft as drafted, re-linked after the other writer's rows, or laid out again because
something it read changed (the same object, the history its planner read, a period close).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.model import JournalEntry, Posting, RawRecord, Snapshot
from ledger.precision import PrecisionTable
from ledger.storage import planning
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.store import LedgerStore
from ledger.storage.verify import verify_store

NOW = datetime(2024, 8, 6, 7, 19, 26, 123456, tzinfo=UTC)
Append = Callable[[LedgerStore], object]


def order(order_id: str, status: str = "PENDING", amount: str = "19.0012") -> RawRecord:
    payload = {"order_id": order_id, "status": status, "currency": "USDC", "amount": amount}
    return RawRecord("aurpay", "order", order_id, payload)


def refund(order_id: str) -> RawRecord:
    return RawRecord("aurpay", "refund", order_id, {"order_id": order_id})


def planner(
    snapshot: Snapshot, effective: JournalEntry | None, precision: PrecisionTable, history: Any
) -> list[JournalEntry]:
    """A paid order posts its amount; a refund posts its order's latest amount back, read from
    the order's history (a planner that reads another object, as Aurpay's refunds do)."""
    payload = snapshot.payload
    if snapshot.kind == "order":
        if payload["status"] != "SUCCESS" or effective is not None:
            return []
        amount = Decimal(payload["amount"])
        legs = (Posting("assets:aurpay", "USDC", amount), Posting("income:sales", "USDC", -amount))
    else:
        orders = history.versions(snapshot.source, "order", snapshot.external_id)
        amount = Decimal(orders[-1].payload["amount"]) if orders else Decimal(0)
        legs = (
            Posting("income:refunds", "USDC", amount),
            Posting("assets:aurpay", "USDC", -amount),
        )
    key = f"{snapshot.source}:{snapshot.kind}:{snapshot.external_id}:v{snapshot.version}"
    return [
        JournalEntry(
            key=key,
            date=snapshot.observed_at,
            description=f"{snapshot.kind} {snapshot.external_id}",
            source=snapshot.source,
            external_id=snapshot.external_id,
            snapshot_seq=snapshot.seq,
            postings=legs,
        )
    ]


class Paths:
    """Which way each drafted append went."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken: list[str] = []
        redeem = planning.redeem

        def counting_redeem(*args: Any) -> Any:
            laid = redeem(*args)
            self.taken.append("rebased" if laid is not None else "laid out again")
            return laid

        monkeypatch.setattr("ledger.storage.store.redeem", counting_redeem)


class Interleaved(LedgerStore):
    """A store whose next drafted append lets ``between`` append before taking the lock."""

    between: Append | None = None

    def _draft(self, *args: Any, **kwargs: Any) -> planning.Draft:
        draft = super()._draft(*args, **kwargs)
        between, self.between = self.between, None
        if between is not None:
            between(self)
        return draft


@pytest.fixture
def stores(ledger_url: str, tmp_path: Path) -> Iterator[tuple[Interleaved, LedgerStore]]:
    """(the drafting store on SQLite or PostgreSQL, a reference store on SQLite, no drafts)."""
    reference_url = f"sqlite:///{tmp_path}/reference.db"
    upgrade(reference_url)
    drafting = Interleaved(
        make_engine(ledger_url), PrecisionTable(), planner=planner, draft_before_lock=True
    )
    reference = LedgerStore(
        make_engine(reference_url), PrecisionTable(), planner=planner, draft_before_lock=False
    )
    yield drafting, reference
    drafting.close()
    reference.close()


def contents(store: LedgerStore) -> tuple[list[Snapshot], list[JournalEntry], tuple[int, str]]:
    return list(store.iter_snapshots()), list(store.iter_journal()), store.head()


def run(
    stores: tuple[Interleaved, LedgerStore],
    setup: list[Append],
    main: Append,
    between: Append | None,
) -> None:
    """``setup`` then ``main`` with ``between`` landing inside it, against the same appends in
    order (``setup``, ``between``, ``main``) on the reference store."""
    drafting, reference = stores
    for step in setup:
        step(drafting)
        step(reference)
    drafting.between = between
    main(drafting)
    if between is not None:
        between(reference)
    main(reference)
    assert contents(drafting) == contents(reference)
    assert verify_store(drafting).ok


def appending(*records: RawRecord, at: datetime = NOW) -> Append:
    return lambda store: store.append(list(records), observed_at=at)


def test_a_draft_nothing_overtook_is_written_as_drafted(
    stores: tuple[Interleaved, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(monkeypatch)
    run(stores, [appending(order("A"))], appending(order("A", "SUCCESS"), order("B")), None)
    assert paths.taken == []  # the head had not moved: no re-read, no re-link


def test_another_writers_objects_move_the_draft_after_them(
    stores: tuple[Interleaved, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(monkeypatch)
    setup = [appending(order("A"), order("C", "SUCCESS"))]
    main = appending(order("A", "SUCCESS"), order("B", "SUCCESS"), refund("C"))
    between = appending(order("X", "SUCCESS"), order("Y"), at=NOW + timedelta(seconds=1))
    run(stores, setup, main, between)
    assert paths.taken == ["rebased"]


def test_a_new_version_of_the_same_object_is_laid_out_again(
    stores: tuple[Interleaved, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(monkeypatch)
    main = appending(order("A", "SUCCESS", amount="5"), order("B"))
    between = appending(order("A", "SUCCESS", amount="7"))
    run(stores, [appending(order("A"))], main, between)
    assert paths.taken == ["laid out again"]


def test_a_change_to_the_history_a_planner_read_is_laid_out_again(
    stores: tuple[Interleaved, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund posts its order's amount: the draft read 10, the lock sees 12."""
    paths = Paths(monkeypatch)
    setup = [appending(order("A", "SUCCESS", amount="10"))]
    between = appending(order("A", "SUCCESS", amount="12"))
    run(stores, setup, appending(refund("A")), between)
    assert paths.taken == ["laid out again"]
    _, journal, _ = contents(stores[0])
    assert journal[-1].postings[0].amount == Decimal(12)


def test_a_period_closed_meanwhile_moves_the_entries_into_the_open_period(
    stores: tuple[Interleaved, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(monkeypatch)

    def close(store: LedgerStore) -> object:
        return store.close_period(date(2024, 8, 6), now=NOW + timedelta(days=1))

    run(stores, [appending(order("A"))], appending(order("A", "SUCCESS")), close)
    assert paths.taken == ["laid out again"]
    _, journal, _ = contents(stores[0])
    assert journal[-1].date.date() == date(2024, 8, 7)


def test_an_entry_stored_meanwhile_is_not_written_twice(
    stores: tuple[Interleaved, LedgerStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other writer stored the same version (so the object's latest changed too)."""
    paths = Paths(monkeypatch)
    same = appending(order("A", "SUCCESS"))
    run(stores, [appending(order("A"))], same, same)
    assert paths.taken == ["laid out again"]
    _, journal, _ = contents(stores[0])
    assert [e.key for e in journal] == ["aurpay:order:A:v2"]
