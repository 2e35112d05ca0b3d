"""A run's last two feeds finishing at once, in two threads, close the run once: one
``sync_finished`` summary and one reconcile, on SQLite and on PostgreSQL.

The threads are held between closing their feed and closing the run, so both feeds are
committed before either asks whether the run is done: the interleaving that logged the summary
twice when each thread only checked that the run looked finished.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from structlog.testing import capture_logs

from ledger.storage.engine import make_engine
from worker.runtime import Runtime, utc_now
from worker.sync.actors import close_feed
from worker.sync.state import RunState

FEEDS = ("orders", "transactions")
ROUNDS = 8


class HeldState(RunState):
    """Holds each caller that closed a feed until the other one closed its own."""

    def __init__(self, engine: Any, barrier: threading.Barrier) -> None:
        super().__init__(engine)
        self.barrier = barrier

    def finish_feed_if_complete(self, run_id: str, source: str, feed: str, now: datetime) -> bool:
        closed = super().finish_feed_if_complete(run_id, source, feed, now)
        self.barrier.wait(timeout=30)
        return closed


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    stub = StubBroker()
    stub.emit_after("process_boot")
    dramatiq.actor(lambda full: None, broker=stub, actor_name="reconcile", queue_name="recon")
    yield stub
    stub.close()


def _runtime(state: RunState) -> Runtime:
    source = SimpleNamespace(feeds=FEEDS)
    return cast(Runtime, SimpleNamespace(state=state, sources={"aurpay": source}, now=utc_now))


def _plan_done_pages(state: RunState, run_id: str, feeds: tuple[str, ...]) -> None:
    for feed in feeds:
        state.plan_feed(run_id, feed, 1)
        state.record_page(
            run_id, feed, 1, new_snapshots=1, journal_entries=1, rejected=0, newest=None
        )


def test_two_feeds_closing_at_once_close_the_run_once(ledger_url: str, broker: StubBroker) -> None:
    engine = make_engine(ledger_url)
    state = HeldState(engine, threading.Barrier(len(FEEDS)))
    rt = _runtime(state)
    try:
        for round_ in range(ROUNDS):
            run_id = f"race-{round_}"
            state.start_run(run_id, "aurpay", "full", utc_now())
            _plan_done_pages(state, run_id, FEEDS)
            errors: list[BaseException] = []

            def close(feed: str, run_id: str = run_id, errors: list[Any] = errors) -> None:
                try:
                    close_feed(rt, broker, "aurpay", feed, run_id)
                except BaseException as exc:  # re-raised below, in the test's thread
                    errors.append(exc)

            with capture_logs() as events:
                threads = [threading.Thread(target=close, args=(feed,)) for feed in FEEDS]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=60)
            assert errors == []
            summaries = [e for e in events if e["event"] == "sync_finished"]
            assert [(e["log_level"], e["run_id"]) for e in summaries] == [("info", run_id)]
            assert sorted(e["feed"] for e in events if e["event"] == "feed_synced") == list(FEEDS)
            summary = state.summary(run_id)
            assert summary is not None and summary.finished and summary.closed
        assert broker.queues["recon"].qsize() == ROUNDS  # one reconcile per run
    finally:
        engine.dispose()


def test_a_run_is_not_closed_before_every_feed_is_in(ledger_url: str, broker: StubBroker) -> None:
    engine = make_engine(ledger_url)
    state = RunState(engine)
    rt = _runtime(state)
    try:
        state.start_run("r1", "aurpay", "incremental", utc_now())
        _plan_done_pages(state, "r1", FEEDS[:1])  # transactions not even planned yet
        with capture_logs() as early:
            close_feed(rt, broker, "aurpay", "orders", "r1")
            close_feed(rt, broker, "aurpay", "orders", "r1")  # a redelivered message
        assert [e["event"] for e in early] == ["feed_synced"]
        assert broker.queues["recon"].qsize() == 0
        summary = state.summary("r1")
        assert summary is not None and not summary.closed

        _plan_done_pages(state, "r1", FEEDS[1:])
        with capture_logs() as last:
            close_feed(rt, broker, "aurpay", "transactions", "r1")
            close_feed(rt, broker, "aurpay", "transactions", "r1")
        assert [e["event"] for e in last] == ["feed_synced", "sync_finished"]
        assert broker.queues["recon"].qsize() == 1
    finally:
        engine.dispose()
