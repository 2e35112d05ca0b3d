"""Bulk inserts (COPY on PostgreSQL, executemany on SQLite) keep every value exactly and fail
the way an INSERT fails."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import jsonx
from ledger.model import JournalEntry, Posting, RawRecord, Snapshot
from ledger.precision import PrecisionTable
from ledger.storage.bulk import insert_rows
from ledger.storage.engine import upgrade
from ledger.storage.store import LedgerStore
from ledger.storage.tables import SNAPSHOT
from ledger.storage.verify import verify_store

NOW = datetime(2024, 8, 6, 7, 19, 26, 123456, tzinfo=UTC)
OpenStore = Callable[..., LedgerStore]

# Text COPY's own syntax: tab, newline, carriage return and backslash are its separators and
# escapes, and \N is its NULL. A payload holding them must come back byte for byte.
AWKWARD = "tab\there\nnew line\r\\ back\\slash \\N not null, «café» ₿ 😀 \x01"


def planner(
    snapshot: Snapshot, effective: JournalEntry | None, precision: PrecisionTable, history: object
) -> list[JournalEntry]:
    amount = Decimal(snapshot.payload["amount"])
    return [
        JournalEntry(
            key=f"k:{snapshot.external_id}:v{snapshot.version}",
            date=NOW,
            description=AWKWARD,
            source=snapshot.source,
            external_id=snapshot.external_id,
            snapshot_seq=snapshot.seq,
            postings=(
                Posting("assets:aurpay", "USDC", amount, Decimal("-0.5"), "USD"),
                Posting("income:sales", "USDC", -amount, Decimal("0.5"), "USD"),
            ),
            meta={"note": AWKWARD},
        )
    ]


@pytest.mark.parametrize(
    "amount",
    ["0.000000000000000000000000000000000001", "123456789012345678901234567890.123456789", "0"],
)
def test_values_round_trip_exactly(ledger_url: str, open_store: OpenStore, amount: str) -> None:
    store = open_store(ledger_url, planner)
    text = f'{{"amount":"{amount}","big":1234.123456789012345678,"name":{jsonx.dumps(AWKWARD)}}}'
    store.append([RawRecord("aurpay", "order", AWKWARD, jsonx.loads(text))], observed_at=NOW)
    (snapshot,) = store.iter_snapshots()
    (entry,) = store.iter_journal()
    assert snapshot.external_id == AWKWARD
    assert jsonx.dumps(snapshot.payload) == text
    assert snapshot.observed_at == NOW
    assert entry.description == AWKWARD and entry.meta == {"note": AWKWARD}
    assert [(p.amount, p.value, p.value_currency) for p in entry.postings] == [
        (Decimal(amount), Decimal("-0.5"), "USD"),
        (-Decimal(amount), Decimal("0.5"), "USD"),
    ]
    assert entry.recorded_at == NOW
    assert verify_store(store).ok


def test_a_refused_row_raises_as_an_insert_would(ledger_url: str, open_store: OpenStore) -> None:
    store = open_store(ledger_url)
    store.append([RawRecord("aurpay", "order", "A", {"amount": "1"})], observed_at=NOW)
    (stored,) = store.iter_snapshots()
    row = {
        "seq": stored.seq,  # taken
        "source": "aurpay",
        "kind": "order",
        "external_id": "B",
        "version": 1,
        "observed_at": NOW,
        "payload": "{}",
        "content_hash": "0" * 64,
        "prev_hash": "0" * 64,
        "entry_hash": "0" * 64,
    }
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        insert_rows(conn, SNAPSHOT, [row])
    assert [s.external_id for s in store.iter_snapshots()] == ["A"]
    assert verify_store(store).ok


@pytest.mark.postgres
def test_a_connection_lost_mid_copy_is_invalidated_and_the_next_append_works(
    pg_url: str, open_store: OpenStore
) -> None:
    """The server ends the session under an append's COPY: the error says the connection was
    invalidated (the pool will not hand it out again), nothing is written, and the next append
    on the same store works."""
    upgrade(pg_url)
    store = open_store(pg_url)
    rows = [RawRecord("aurpay", "order", f"o{i}", {"amount": str(i)}) for i in range(50)]

    class Cut(LedgerStore):
        def _write(self, conn: sa.Connection, laid: Any) -> None:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with self._reader.connect() as other:  # waits up to 5 s until the session is gone
                other.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            super()._write(conn, laid)

    cut = Cut(store.engine, PrecisionTable())
    with pytest.raises(sa.exc.OperationalError) as caught:
        cut.append(rows, observed_at=NOW)
    assert str(caught.value.statement).startswith("COPY ledger_snapshot ")
    assert caught.value.connection_invalidated
    assert list(store.iter_snapshots()) == []
    store.append(rows, observed_at=NOW)
    assert len(list(store.iter_snapshots())) == 50
    assert verify_store(store).ok
