"""The database itself refuses to change ledger rows: raw SQL UPDATE, DELETE (and TRUNCATE on
PostgreSQL) fail on every ledger table, whatever code issues them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ledger.storage.engine import upgrade
from ledger.storage.store import LedgerStore
from ledger.storage.tables import LEDGER_TABLES
from tests.integration.storage.test_store import order, toy_planner

NOW = datetime(2024, 8, 6, tzinfo=UTC)

CHANGES = {
    "ledger_snapshot": "UPDATE ledger_snapshot SET payload = '{}'",
    "ledger_journal": "UPDATE ledger_journal SET description = 'edited'",
    "ledger_posting": "UPDATE ledger_posting SET amount = '0'",
}


def _filled(url: str, open_store: Callable[..., LedgerStore]) -> LedgerStore:
    store = open_store(url, toy_planner)
    store.append([order("1", "SUCCESS")], observed_at=NOW)
    assert store.counts()["postings"] == 2
    return store


@pytest.fixture
def store(ledger_url: str, open_store: Callable[..., LedgerStore]) -> LedgerStore:
    return _filled(ledger_url, open_store)


def _refused(store: LedgerStore, statement: str) -> None:
    refused = pytest.raises(sa.exc.DBAPIError, match="ledger is append-only")
    with refused, store.engine.begin() as conn:
        conn.execute(sa.text(statement))


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_update_is_refused(store: LedgerStore, table: str) -> None:
    _refused(store, CHANGES[table])


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_delete_is_refused(store: LedgerStore, table: str) -> None:
    _refused(store, f"DELETE FROM {table}")


@pytest.mark.postgres
def test_truncate_is_refused_on_postgres(
    pg_url: str, open_store: Callable[..., LedgerStore]
) -> None:
    upgrade(pg_url)
    store = _filled(pg_url, open_store)
    for table in LEDGER_TABLES:
        _refused(store, f"TRUNCATE {table} CASCADE")


def test_rows_are_unchanged_after_refusals(store: LedgerStore) -> None:
    before = (store.counts(), list(store.iter_snapshots()), list(store.iter_journal()))
    for table in LEDGER_TABLES:
        with pytest.raises(sa.exc.DBAPIError), store.engine.begin() as conn:
            conn.execute(sa.text(CHANGES[table]))
    assert (store.counts(), list(store.iter_snapshots()), list(store.iter_journal())) == before


# --- statements that slip past plain UPDATE/DELETE triggers (migration 0004)


def _snapshot_copy(verb: str) -> str:
    columns = "seq, source, kind, external_id, version, observed_at, payload, content_hash, "
    columns += "prev_hash, entry_hash"
    return (
        f"{verb} INTO ledger_snapshot ({columns}) SELECT seq, source, kind, external_id, "
        f"version, observed_at, '{{}}', content_hash, prev_hash, entry_hash "
        f"FROM ledger_snapshot WHERE seq = 1"
    )


@pytest.mark.parametrize("verb", ["REPLACE", "INSERT OR REPLACE"])
def test_sqlite_replace_cannot_rewrite_a_row(
    sqlite_url: str, open_store: Callable[..., LedgerStore], verb: str
) -> None:
    upgrade(sqlite_url)
    store = _filled(sqlite_url, open_store)
    before = list(store.iter_snapshots())
    _refused(store, _snapshot_copy(verb))
    _refused(store, "REPLACE INTO ledger_posting SELECT journal_seq, idx, account, currency, "
             "'0', value, value_currency FROM ledger_posting")  # fmt: skip
    assert list(store.iter_snapshots()) == before


@pytest.mark.postgres
def test_postgres_triggers_fire_for_a_replica_role_session(
    pg_url: str, open_store: Callable[..., LedgerStore]
) -> None:
    upgrade(pg_url)
    store = _filled(pg_url, open_store)
    for table in LEDGER_TABLES:
        refused = pytest.raises(sa.exc.DBAPIError, match="ledger is append-only")
        with refused, store.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text(CHANGES[table]))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("DELETE FROM ledger_head"))


def test_the_chain_head_cannot_be_deleted(store: LedgerStore) -> None:
    head = store.head()
    _refused(store, "DELETE FROM ledger_head")
    assert store.head() == head


def test_the_chain_head_cannot_move_back_or_off_the_chain(store: LedgerStore) -> None:
    seq, head = store.head()
    (first,) = [s for s in store.iter_snapshots() if s.seq == 1]
    _refused(store, f"UPDATE ledger_head SET seq = 1, hash = '{first.entry_hash}'")  # back
    _refused(store, f"UPDATE ledger_head SET hash = '{'0' * 64}'")  # same seq, other hash
    _refused(store, f"UPDATE ledger_head SET seq = {seq + 1}, hash = '{head}'")  # no such row
    _refused(store, "UPDATE ledger_head SET id = 2")
    assert store.head() == (seq, head)


def test_the_chain_head_still_moves_forward_with_appends(store: LedgerStore) -> None:
    seq, _ = store.head()
    store.append([order("2", "SUCCESS")], observed_at=NOW)
    assert store.head()[0] == seq + 2  # the new snapshot and its journal entry
