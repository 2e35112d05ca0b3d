"""Concurrent appenders never fork the chain or duplicate a version: 4 processes on one
PostgreSQL database, and 4 threads on one SQLite file, each appending overlapping batches."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.store import LedgerStore
from ledger.storage.verify import verify_store
from tests.integration.storage.test_store import order, toy_planner

WRITERS = 4
OBJECTS = 40
PAGE = 10
NOW = datetime(2024, 8, 6, tzinfo=UTC)


def _pages(writer: int, status: str) -> list[list[Any]]:
    """Writer w covers objects [10w, 10w + 20), overlapping its neighbours, in its own order."""
    ids = [f"{(writer * PAGE + i) % OBJECTS:03}" for i in range(2 * PAGE)]
    if writer % 2:
        ids.reverse()
    records = [order(i, status) for i in ids]
    return [records[start : start + PAGE] for start in range(0, len(records), PAGE)]


def _write(url: str, writer: int, barrier: Any, results: Any = None) -> int:
    """Phase 1 appends PENDING versions, phase 2 (after every writer finished 1) SUCCESS."""
    store = LedgerStore(make_engine(url), PrecisionTable(), planner=toy_planner)
    appended = 0
    try:
        for status in ("PENDING", "SUCCESS"):
            for page in _pages(writer, status):
                appended += len(store.append(page, observed_at=NOW).new_snapshots)
            barrier.wait(timeout=120)
    finally:
        store.close()
    if results is not None:
        results.put(appended)
    return appended


def _assert_one_writer_result(url: str, appended: int) -> None:
    store = LedgerStore(make_engine(url), PrecisionTable(), planner=toy_planner)
    try:
        report = verify_store(store)
        assert report.ok, report.message()
        versions: dict[str, list[tuple[int, str]]] = {}
        for snapshot in store.iter_snapshots():
            versions.setdefault(snapshot.external_id, []).append(
                (snapshot.version, snapshot.payload["status"])
            )
        assert versions == {f"{i:03}": [(1, "PENDING"), (2, "SUCCESS")] for i in range(OBJECTS)}
        assert appended == 2 * OBJECTS
        assert store.counts()["journal_entries"] == OBJECTS  # one sale per object, no twins
        assert report.entries == 3 * OBJECTS
    finally:
        store.close()


@pytest.mark.postgres
def test_processes_on_postgres(pg_url: str) -> None:
    upgrade(pg_url)
    # forkserver: fresh processes like spawn (no inherited connections or threads), but the
    # heavy imports happen once in the server instead of once per writer.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    barrier, results = ctx.Barrier(WRITERS), ctx.SimpleQueue()
    writers = [
        ctx.Process(target=_write, args=(pg_url, w, barrier, results)) for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=240)
    assert [process.exitcode for process in writers] == [0] * WRITERS
    _assert_one_writer_result(pg_url, sum(results.get() for _ in writers))


def test_threads_on_sqlite(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    barrier = threading.Barrier(WRITERS)
    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(lambda w: _write(sqlite_url, w, barrier), range(WRITERS)))
    _assert_one_writer_result(sqlite_url, sum(results))
