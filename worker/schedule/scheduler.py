"""The scheduler: enqueue each periodic job once per tick, from whichever copy holds the lease.

Tick ``n`` of a job with interval ``i`` covers epoch seconds ``[n*i, (n+1)*i)``, so ticks line up
with UTC (a daily job's tick starts at midnight). Each (job, tick) is recorded in ``sync_tick``
before its message is enqueued; the unique key makes firing a tick twice impossible even if two
copies briefly both believe they hold the lease. After downtime only the latest missed tick of
each job runs: a daily scan missed three times runs once, as one run covers what the others would.
Runs are stored by their tick's start time, so changing an interval never re-fires or stalls a job.
A claim never marked enqueued (the process died in between) is released after
``CLAIM_TIMEOUT``, so the loop fires that tick again if it is still the latest. The lease holder
also runs a recovery callable: on taking the lease, then every ``recover_seconds``, before the
jobs fire.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger.chain import iso_utc
from ledger.storage.engine import read_only
from ledger.storage.sync_tables import SYNC_TICK
from worker.logging import get_logger
from worker.schedule.lease import Lease, new_holder_id, utc_now

log = get_logger(__name__)

CLAIM_TIMEOUT = timedelta(seconds=60)  # claiming and enqueueing take milliseconds


class Job(NamedTuple):
    """A periodic job: its interval and how to enqueue one run, given the run's tick key."""

    interval_seconds: int
    enqueue: Callable[[str], Any]


def tick_of(interval: int, moment: datetime) -> int:
    return int(moment.timestamp() // interval)


def tick_start(interval: int, tick: int) -> datetime:
    return datetime.fromtimestamp(tick * interval, UTC)


def tick_key(job: str, start: datetime) -> str:
    """The idempotency key the message carries, e.g. ``sync_full@2024-06-17T00:00:00.000000Z``."""
    return f"{job}@{iso_utc(start)}"


def due_ticks(interval: int, last_tick: int | None, now: datetime) -> list[int]:
    """Ticks to run now: the current one unless it already ran; missed older ones are skipped."""
    current = tick_of(interval, now)
    if last_tick is not None and last_tick >= current:
        return []
    return [current]


def claimed_this_tick(ticks: TickStore, job: str, interval: int, now: datetime) -> bool:
    """Whether ``job``'s tick containing ``now`` was claimed (fired, or firing now)."""
    last = ticks.last_start(job)
    return last is not None and last >= tick_start(interval, tick_of(interval, now))


class TickStore(Protocol):
    """Runs are identified by (job, start of their tick) so an interval change keeps history."""

    def last_start(self, job: str) -> datetime | None: ...

    def claim(self, job: str, start: datetime, now: datetime) -> bool:
        """Record that (job, start) runs; False if it was already recorded."""
        ...

    def mark_enqueued(self, job: str, start: datetime) -> None: ...

    def unclaim(self, job: str, start: datetime) -> None:
        """Forget a claim whose message could not be enqueued, so the next loop retries it."""
        ...

    def release_stale(self, job: str, since: datetime, claimed_before: datetime) -> list[datetime]:
        """Forget claims of ticks starting at or after ``since``, made before ``claimed_before``
        and never marked enqueued (their process died in between); the start of each."""
        ...


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class DbTickStore:
    """``sync_tick`` rows via SQLAlchemy Core; the (job, tick) primary key deduplicates.

    ``tick`` holds the tick's start in epoch seconds (not the tick number, whose unit changes
    with the interval), so the greatest is the latest whatever the interval was.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def last_start(self, job: str) -> datetime | None:
        with read_only(self._engine).connect() as conn:
            last = conn.execute(
                sa.select(sa.func.max(SYNC_TICK.c.tick)).where(SYNC_TICK.c.job == job)
            ).scalar()
        return None if last is None else datetime.fromtimestamp(int(last), UTC)

    def claim(self, job: str, start: datetime, now: datetime) -> bool:
        row = {"job": job, "tick": _epoch(start), "status": "claimed", "created_at": now}
        try:
            with self._engine.begin() as conn:
                conn.execute(SYNC_TICK.insert().values(**row))
        except IntegrityError:
            return False
        return True

    def mark_enqueued(self, job: str, start: datetime) -> None:
        self._run(job, start, SYNC_TICK.update().values(status="enqueued"))

    def unclaim(self, job: str, start: datetime) -> None:
        self._run(job, start, SYNC_TICK.delete().where(SYNC_TICK.c.status == "claimed"))

    def release_stale(self, job: str, since: datetime, claimed_before: datetime) -> list[datetime]:
        tick = SYNC_TICK.c
        stale = SYNC_TICK.delete().where(
            tick.job == job,
            tick.tick >= _epoch(since),  # a primary-key range: the job's latest ticks only
            tick.status == "claimed",
            tick.created_at < claimed_before,
        )
        with self._engine.begin() as conn:
            starts = conn.execute(stale.returning(tick.tick)).scalars().all()
        return [datetime.fromtimestamp(int(start), UTC) for start in starts]

    def _run(self, job: str, start: datetime, statement: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(statement.where(SYNC_TICK.c.job == job, SYNC_TICK.c.tick == _epoch(start)))


class Scheduler:
    """Fires ``jobs`` while holding ``lease``; a second copy waits and takes over at expiry."""

    def __init__(
        self,
        jobs: Mapping[str, tuple[int, Callable[[str], Any]]],
        lease: Lease,
        ticks: TickStore,
        *,
        holder: str | None = None,
        lease_ttl: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        recover: Callable[[datetime], Any] | None = None,
        recover_seconds: float = 60.0,
    ) -> None:
        self.jobs = {name: Job(*job) for name, job in jobs.items()}
        self.lease = lease
        self.ticks = ticks
        self.holder = holder or new_holder_id()
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.holding = False
        self.recover = recover
        self.recover_seconds = recover_seconds
        self._recovered_at: datetime | None = None  # None: on taking the lease
        self._announced: set[str] = set()  # jobs whose first tick under this lease was logged

    def _hold_lease(self) -> bool:
        if self.holding:
            self.holding = self.lease.renew(self.holder, self.lease_ttl)
            if not self.holding:
                log.warning("scheduler_lease_lost", holder=self.holder)
        else:
            self.holding = self.lease.acquire(self.holder, self.lease_ttl)
            if self.holding:
                self._announced = set()
                log.info("scheduler_lease_acquired", holder=self.holder)
        return self.holding

    def run_once(self, now: datetime | None = None) -> list[str]:
        """One loop: renew or take the lease, then enqueue every due tick; returns their keys."""
        now = now or self.clock()
        if not self._hold_lease():
            self._recovered_at = None
            return []
        self._release_stale_claims(now)
        self._run_recovery(now)
        fired = []
        for name, job in self.jobs.items():
            interval = job.interval_seconds
            last = self.ticks.last_start(name)
            last_tick = None if last is None else tick_of(interval, last)
            for tick in due_ticks(interval, last_tick, now):
                start = tick_start(interval, tick)
                if not self.ticks.claim(name, start, now):
                    continue  # another copy fired it
                key = tick_key(name, start)
                try:
                    job.enqueue(key)
                except Exception:
                    self.ticks.unclaim(name, start)
                    log.exception("scheduler_enqueue_failed", job=name, tick_key=key)
                    continue
                self.ticks.mark_enqueued(name, start)
                # info for each job's first tick under this lease, then debug: quiet when idle
                level = log.debug if name in self._announced else log.info
                level("scheduler_tick_enqueued", job=name, tick_key=key)
                self._announced.add(name)
                fired.append(key)
        return fired

    def _release_stale_claims(self, now: datetime) -> None:
        """Of each job's current and previous tick: only the latest tick ever fires again."""
        for name, job in self.jobs.items():
            previous = tick_start(job.interval_seconds, tick_of(job.interval_seconds, now) - 1)
            for start in self.ticks.release_stale(name, previous, now - CLAIM_TIMEOUT):
                log.warning("scheduler_stale_claim_released", tick_key=tick_key(name, start))

    def _run_recovery(self, now: datetime) -> None:
        """Before the jobs: a run left open is judged while only the dead held it."""
        if self.recover is None:
            return
        last = self._recovered_at
        if last is not None and (now - last).total_seconds() < self.recover_seconds:
            return
        self._recovered_at = now
        try:
            self.recover(now)
        except Exception:  # the jobs still fire; the next pass tries again
            log.exception("scheduler_recovery_failed")

    def release(self) -> None:
        self.lease.release(self.holder)
        if self.holding:
            log.info("scheduler_lease_released", holder=self.holder)
        self.holding = False

    def run_forever(self, stop: threading.Event, poll_seconds: float | None = None) -> None:
        """Loop until ``stop`` is set, then release the lease. Errors are logged and retried."""
        poll = poll_seconds or min(5.0, self.lease_ttl / 3)
        log.info("scheduler_started", holder=self.holder, jobs=sorted(self.jobs))
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                except Exception:  # a DB or Redis outage: keep looping, the lease will expire
                    self.holding = False
                    log.exception("scheduler_loop_failed")
                stop.wait(poll)
        finally:
            try:
                self.release()
            except Exception:  # the lease expires by itself; say so and exit cleanly
                log.exception("scheduler_release_failed", holder=self.holder)
            log.info("scheduler_stopped", holder=self.holder)


def stop_on_signals(stop: threading.Event) -> None:
    """Set ``stop`` on SIGTERM and SIGINT (call from the main thread)."""

    def handle(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
