"""The dramatiq actors: thin shells over ``worker.sync.engine`` that send follow-ups after each
commit.

Declared by ``declare_actors(broker)`` rather than at import, so the composition root picks the
broker first. Every actor is idempotent (the ledger's natural keys), takes primitive arguments
(ids, never payloads), and turns a provider's retry hint into ``dramatiq.Retry(delay=…)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.actor import ActorDecorator

from worker.errors import PermanentError, TransientError
from worker.gateways.contract import FollowUp, Source
from worker.logging import get_logger
from worker.runtime import Runtime, current
from worker.sync import engine as sync
from worker.sync.state import RunState

log = get_logger(__name__)

SYNC_QUEUE = "tally-sync"
OBJECTS_QUEUE = "tally-objects"
RECONCILE_QUEUE = "tally-reconcile"
ALERTS_QUEUE = "tally-alerts"
QUEUES = (SYNC_QUEUE, OBJECTS_QUEUE, RECONCILE_QUEUE, ALERTS_QUEUE)
RETRY_OPTIONS: dict[str, Any] = {
    "max_retries": 8,
    "min_backoff": 500,
    "max_backoff": 60_000,
    "time_limit": 10 * 60_000,
    "throws": (PermanentError,),
}


@dataclass(frozen=True)
class Actors:
    sync_feed: dramatiq.Actor[Any, Any]
    sync_page: dramatiq.Actor[Any, Any]
    fetch_object: dramatiq.Actor[Any, Any]

    def start_scan(
        self, state: RunState, source: Source, mode: str, run_id: str, now: datetime
    ) -> None:
        """Record a run of ``source`` and send one ``sync_feed`` message per feed."""
        state.start_run(run_id, source.name, mode, now)
        for feed in source.feeds:
            self.sync_feed.send(source.name, feed, mode, run_id)


@contextmanager
def _errors_recorded(rt: Runtime, run_id: str | None, source: str) -> Iterator[None]:
    """Note failures on the run and the source (for meta-alerts); turn hints into retries."""
    try:
        yield
    except TransientError as exc:
        rt.state.mark_source(source, rt.now(), str(exc))
        if exc.retry_after is not None:
            raise dramatiq.Retry(str(exc), delay=int(exc.retry_after * 1000)) from None
        raise
    except PermanentError as exc:
        rt.state.mark_source(source, rt.now(), str(exc))
        if run_id:
            rt.state.record_error(run_id, f"{source}: {exc}")
        log.error("sync_failed", source=source, run_id=run_id, error=str(exc))
        raise
    else:
        rt.state.mark_source(source, rt.now(), None)


def log_summary(rt: Runtime, run_id: str) -> None:
    """One summary per sync, once its last feed finished: info if it appended or rejected
    anything, debug for an idle one (an idle deployment logs nothing above debug)."""
    run = rt.state.summary(run_id)
    if run is None:
        return
    busy = run.new_snapshots or run.journal_entries or run.rejected or run.error
    (log.info if busy else log.debug)(
        "sync_finished",
        source=run.source,
        mode=run.mode,
        run_id=run_id,
        pages=run.pages,
        new_snapshots=run.new_snapshots,
        journal_entries=run.journal_entries,
        rejected=run.rejected,
        seconds=round((run.last_progress - run.started_at).total_seconds(), 3),
    )


def send_reconcile(broker: dramatiq.Broker) -> None:
    """Ask for an incremental reconcile, if this process declared the reconcile actor."""
    try:
        broker.get_actor("reconcile").send(False)
    except dramatiq.errors.ActorNotFound:
        log.debug("reconcile_not_declared")


def close_feed(rt: Runtime, broker: dramatiq.Broker, source: str, feed: str, run_id: str) -> None:
    """Close ``feed`` if every planned page is done and, if it was the run's last, the run:
    its summary and its reconcile happen once, in whichever process closed it (two feeds
    finishing at once in two threads both see the run done, but only one closes it)."""
    if not rt.state.finish_feed_if_complete(run_id, source, feed, rt.now()):
        return
    log.debug("feed_synced", source=source, feed=feed, run_id=run_id)
    if rt.state.finish_run_if_complete(run_id, len(rt.sources[source].feeds), rt.now()):
        log_summary(rt, run_id)
        # Reconcile once the run's last feed is in: incremental, so it costs what the run
        # appended, and an order is not judged before its transactions are in (one
        # reconcile per feed judged objects twice, opening alerts the next feed resolved).
        send_reconcile(broker)


def declare_actors(broker: dramatiq.Broker, runtime: Callable[[], Runtime] = current) -> Actors:
    def send_follow_ups(source: str, follow_ups: tuple[FollowUp, ...], run_id: str | None) -> None:
        for follow_up in follow_ups:
            fetch_object.send(source, follow_up.kind, follow_up.external_id, run_id)

    def sync_feed_fn(source: str, feed: str, mode: str, run_id: str) -> None:
        """Scan one feed: page 1 here, then fan out (full) or walk on (incremental)."""
        rt = runtime()
        rt.state.start_run(run_id, source, mode, rt.now())
        with _errors_recorded(rt, run_id, source):
            first, plan = sync.begin_scan(rt.sync, source, feed, mode, run_id)
        # Plan before noting: the feed row must exist for the notes to land on it. An
        # incremental walk's length is known at its end; until then it cannot look complete.
        full = plan.mode == "full"
        rt.state.plan_feed(run_id, feed, max(plan.max_page, 1) if full else len(plan.pages) + 2)
        rt.state.note_newest(run_id, feed, first.newest)
        send_follow_ups(source, first.follow_ups, run_id)
        if full:
            for number in plan.pages:
                sync_page.send(source, feed, number, run_id)
        else:
            walked = 1
            oldest_first = sync.is_oldest_first(first.page)
            for number in plan.pages:
                with _errors_recorded(rt, run_id, source):
                    outcome = sync.sync_page(rt.sync, source, feed, number, run_id, rescan=False)
                walked += 1  # the page noted its newest time itself (``record_page``)
                send_follow_ups(source, outcome.follow_ups, run_id)
                if outcome.page.empty or sync.reached_floor(
                    rt.sync, source, feed, outcome, oldest_first=oldest_first
                ):
                    break
            rt.state.set_expected(run_id, feed, walked)
        close_feed(rt, broker, source, feed, run_id)

    def sync_page_fn(source: str, feed: str, number: int, run_id: str) -> None:
        """One page of a full scan (fan-out); re-reads are harmless."""
        rt = runtime()
        with _errors_recorded(rt, run_id, source):
            outcome = sync.sync_page(rt.sync, source, feed, number, run_id, rescan=True)
        send_follow_ups(source, outcome.follow_ups, run_id)
        # The feed grew while we scanned: whoever sees it first schedules the new pages.
        for extra in rt.state.extend_feed(run_id, feed, outcome.page.max_page):
            sync_page.send(source, feed, extra, run_id)
        close_feed(rt, broker, source, feed, run_id)

    def fetch_object_fn(source: str, kind: str, external_id: str, run_id: str | None) -> None:
        """Fetch and append one object: a follow-up, or what a callback named (never trusting
        the callback's body)."""
        rt = runtime()
        with _errors_recorded(rt, run_id, source):
            outcome = sync.sync_object(rt.sync, source, kind, external_id, run_id)
        send_follow_ups(source, outcome.follow_ups, run_id)

    def declare(name: str, queue: str) -> ActorDecorator:
        return dramatiq.actor(actor_name=name, queue_name=queue, broker=broker, **RETRY_OPTIONS)

    sync_feed = declare("sync_feed", SYNC_QUEUE)(sync_feed_fn)
    sync_page = declare("sync_page", SYNC_QUEUE)(sync_page_fn)
    fetch_object = declare("fetch_object", OBJECTS_QUEUE)(fetch_object_fn)
    return Actors(sync_feed, sync_page, fetch_object)
