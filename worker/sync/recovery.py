"""Recovery: finish what a killed process or an emptied broker left undone, at start-up and then
on every scheduler pass (the scheduler's lease holder runs it; ``worker/app/wiring.py``).

Each pass reads the database, a few indexed queries when nothing is pending:

- a run nothing works on any more (no message left on the sync queue and no progress for
  ``IDLE_GRACE``, or no progress for ``STALL`` whatever the queue holds): a full scan is resumed
  (its missing pages sent again, a feed never planned scanned again, under the same run id)
  unless it recorded a permanent error; any other run is marked interrupted (the next
  incremental run covers an incremental one: its cursor did not move);
- follow-ups the ledger implies but that never landed (``Source.pending_follow_ups``), read
  from the oldest snapshot still implying one: sent, and sent again only once the objects queue
  is idle (the message may still be there) after 1, 2, 4… minutes;
- a full scan of a source whose last complete one is missing or older than the interval, when
  this period's tick has fired, none is open and none started within ``FULL_SCAN_RETRY``;
- the pass's findings, per source, for ``tally status`` (``worker.sync.recovery_notes``).

Ticks claimed but never enqueued are the scheduler's own: ``DbTickStore.release_stale``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from worker.gateways.contract import Source
from worker.logging import get_logger
from worker.runtime import Runtime
from worker.sync.actors import OBJECTS_QUEUE, SYNC_QUEUE, Actors, close_feed
from worker.sync.once import new_run_id
from worker.sync.recovery_notes import RecoveryNotes
from worker.sync.state import RunSummary

log = get_logger(__name__)

IDLE_GRACE = timedelta(seconds=15)  # a run another process just started may not be queued yet
STALL = timedelta(minutes=10)  # no progress this long: dead, even with the sync queue busy
RUN_WINDOW = timedelta(days=2)  # older unfinished runs were judged by earlier passes
FULL_SCAN_RETRY = timedelta(hours=1)  # between full scans that keep failing
FIRST_RESEND, LAST_RESEND = timedelta(minutes=1), timedelta(hours=1)

FollowUpKey = tuple[str, str, str]  # (source, kind, external_id)


@dataclass(frozen=True)
class RecoveryReport:
    """What one pass found and did."""

    resumed: tuple[str, ...]  # run ids
    interrupted: tuple[str, ...]
    full_scans: tuple[str, ...]  # run ids started
    pending: dict[str, int]  # source → follow-ups the ledger implies
    sent: int  # follow-ups sent by this pass

    @property
    def found_work(self) -> bool:
        return bool(self.resumed or self.interrupted or self.full_scans or self.sent)


@dataclass
class Resends:
    """When each follow-up recovery sent may go again: never while the objects queue is busy,
    then after ``FIRST_RESEND``, doubling up to ``LAST_RESEND`` (one that never lands, e.g. a
    refund the provider does not show yet, costs a request an hour)."""

    sent: dict[FollowUpKey, tuple[int, datetime]] = field(default_factory=dict)

    def due(self, key: FollowUpKey, now: datetime, queue_idle: bool) -> bool:
        tries, next_at = self.sent.get(key, (0, now))
        if tries and not (queue_idle and now >= next_at):
            return False
        self.sent[key] = (tries + 1, now + min(LAST_RESEND, FIRST_RESEND * 2**tries))
        return True

    def keep_only(self, source: str, pending: set[FollowUpKey]) -> None:
        """Forget what landed: follow-ups of ``source`` no longer pending."""
        for key in [k for k in self.sent if k[0] == source and k not in pending]:
            del self.sent[key]


class Recovery:
    """One per scheduler process; ``run`` is one pass, ``started`` marks the process's start."""

    def __init__(
        self,
        rt: Runtime,
        actors: Actors,
        in_flight: Callable[[str], int],
        full_tick_fired: Callable[[datetime], bool],
    ) -> None:
        self.rt = rt
        self.actors = actors
        self.in_flight = in_flight  # messages queued, delayed or in progress on a queue
        self.full_tick_fired = full_tick_fired  # this period's full-scan tick was claimed
        self.notes = RecoveryNotes(rt.store.engine)
        self.full_scan_interval = timedelta(seconds=rt.settings.sync_full_scan_interval_seconds)
        self.resends = Resends()
        self.floors: dict[str, int] = {}  # source → the ledger seq its next read starts after
        self.passes = 0

    def started(self, now: datetime) -> None:
        self.notes.started(self.rt.sources, now)

    def run(self, now: datetime) -> RecoveryReport:
        sync_busy = self.in_flight(SYNC_QUEUE) > 0
        resumed, interrupted = self._runs(now, sync_busy)
        full_scans = self._due_full_scans(now)
        objects_idle = self.in_flight(OBJECTS_QUEUE) == 0
        pending, sent = {}, 0
        for name, source in self.rt.sources.items():
            pending[name], sent_now = self._follow_ups(source, now, objects_idle)
            sent += sent_now
            self.notes.checked(name, now, pending[name])
        report = RecoveryReport(
            tuple(resumed), tuple(interrupted), tuple(full_scans), pending, sent
        )
        self.passes += 1
        if report.found_work or self.passes == 1:
            log.info(
                "recovery_checked",
                resumed=report.resumed,
                interrupted=report.interrupted,
                full_scans=report.full_scans,
                pending_follow_ups=report.pending,
                sent=report.sent,
            )
        return report

    # --- runs

    def _runs(self, now: datetime, sync_busy: bool) -> tuple[list[str], list[str]]:
        resumed, interrupted = [], []
        quiet_enough = STALL if sync_busy else IDLE_GRACE
        for run in self.rt.state.unfinished_runs(sorted(self.rt.sources), now - RUN_WINDOW):
            if now - run.last_progress < quiet_enough:
                continue  # a message for it may still be queued or in progress
            if run.mode == "full" and run.error is None:
                self._resume(run, self.rt.sources[run.source], now)
                resumed.append(run.run_id)
            elif self.rt.state.interrupt_run(run.run_id, now):
                interrupted.append(run.run_id)
        return resumed, interrupted

    def _resume(self, run: RunSummary, source: Source, now: datetime) -> None:
        """Send what the run still lacks, under its own id: re-reads are harmless."""
        gaps = self.rt.state.feed_gaps(run.run_id)
        for feed in source.feeds:
            if feed not in gaps:  # never planned: its first page never committed
                self.actors.sync_feed.send(source.name, feed, "full", run.run_id)
                continue
            missing = gaps[feed]
            if missing is None:
                continue  # finished
            for number in missing:
                self.actors.sync_page.send(source.name, feed, number, run.run_id)
            if not missing:  # every page done, the process died before closing the feed
                close_feed(self.rt, self.actors.sync_feed.broker, source.name, feed, run.run_id)

    # --- full scans

    def _due_full_scans(self, now: datetime) -> list[str]:
        if not self.full_tick_fired(now):
            return []  # the scheduler fires this period's scan itself
        last_complete = self._last_full_scans()
        retry = min(FULL_SCAN_RETRY, self.full_scan_interval)
        started = []
        for name, source in self.rt.sources.items():
            last = last_complete.get(name)
            if last is not None and now - last <= self.full_scan_interval:
                continue
            latest = self.rt.state.latest_runs(name, 1, mode="full")
            if latest and (
                not (latest[0].finished or latest[0].interrupted)
                or now - latest[0].started_at < retry
            ):
                continue  # one is running, or was tried a moment ago
            run_id = new_run_id(name, "full")
            self.actors.start_scan(self.rt.state, source, "full", run_id, now)
            started.append(run_id)
        return started

    def _last_full_scans(self) -> dict[str, datetime]:
        """source → when its last complete full scan ended (the earliest of its feeds')."""
        by_feed = {(c.source, c.feed): c.last_full_scan_at for c in self.rt.state.cursors()}
        found = {}
        for name, source in self.rt.sources.items():
            times = [by_feed.get((name, feed)) for feed in source.feeds]
            if all(t is not None for t in times):
                found[name] = min(t for t in times if t is not None)
        return found

    # --- follow-ups

    def _follow_ups(self, source: Source, now: datetime, queue_idle: bool) -> tuple[int, int]:
        """(follow-ups pending, follow-ups sent) for ``source``."""
        head = self.rt.store.head()[0]
        since = self.floors.get(source.name, 0)
        found = list(source.pending_follow_ups(self.rt.store, since))
        # Next pass: rows appended since this one, and again whatever is still pending.
        self.floors[source.name] = min((p.implied_by_seq - 1 for p in found), default=head)
        keys: set[FollowUpKey] = set()
        sent = 0
        for pending in found:
            follow_up = pending.follow_up
            key = (source.name, follow_up.kind, follow_up.external_id)
            keys.add(key)
            if self.resends.due(key, now, queue_idle):
                self.actors.fetch_object.send(
                    source.name, follow_up.kind, follow_up.external_id, None
                )
                sent += 1
        self.resends.keep_only(source.name, keys)
        return len(keys), sent
