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
