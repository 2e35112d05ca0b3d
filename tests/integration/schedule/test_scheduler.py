"""The scheduler fires each (job, tick) once across copies, restarts and lease moves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from ledger.storage.engine import make_engine, upgrade
from worker.schedule.lease import DbLease, Lease, RedisLease
from worker.schedule.scheduler import DbTickStore, Scheduler, due_ticks, tick_of

REPO_ROOT = str(Path(__file__).resolve().parents[3])
T0 = datetime(2024, 6, 17, 0, 0, 10, tzinfo=UTC)
MINUTE = 60
DAY = 86400


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Fired:
    """The broker as the scheduler sees it: records every enqueued tick key."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def enqueue(self, key: str) -> None:
        with self._lock:
            self.keys.append(key)

    def jobs(self) -> dict[str, tuple[int, Callable[[str], None]]]:
        return {
            "sync_incremental": (MINUTE, self.enqueue),
            "sync_full": (DAY, self.enqueue),
            "reconcile": (MINUTE, self.enqueue),
        }

    def of(self, job: str) -> list[str]:
        return [k for k in self.keys if k.startswith(f"{job}@")]


class GrantingLease:
    """A lease that always says yes: shows the tick table alone prevents double firing."""

    def acquire(self, holder: str, ttl: float) -> bool:
        return True

    renew = acquire

    def release(self, holder: str) -> None:
        pass

    def current_holder(self) -> str | None:
        return None


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _scheduler(
    fired: Fired, lease: Lease, engine: Engine, holder: str, clock: Clock, ttl: float = 30
) -> Scheduler:
    return Scheduler(
        fired.jobs(), lease, DbTickStore(engine), holder=holder, lease_ttl=ttl, clock=clock
    )


def _assert_each_key_once(fired: Fired) -> None:
    assert fired.keys
    assert [k for k, n in Counter(fired.keys).items() if n > 1] == []


# --- the pure core


def test_first_run_fires_the_current_tick() -> None:
    assert due_ticks(MINUTE, None, T0) == [tick_of(MINUTE, T0)]


def test_a_tick_that_already_ran_is_not_due() -> None:
    current = tick_of(MINUTE, T0)
    assert due_ticks(MINUTE, current, T0 + timedelta(seconds=49)) == []


def test_after_downtime_only_the_latest_missed_tick_is_due() -> None:
    three_days_later = T0 + timedelta(days=3, hours=1)
    assert due_ticks(DAY, tick_of(DAY, T0), three_days_later) == [tick_of(DAY, three_days_later)]


# --- two copies


def test_two_schedulers_on_one_database_fire_each_tick_once(engine: Engine) -> None:
    clock, fired = Clock(T0), Fired()
    first = _scheduler(fired, DbLease(engine, "scheduler", clock=clock), engine, "a", clock)
    second = _scheduler(fired, DbLease(engine, "scheduler", clock=clock), engine, "b", clock)

    for _ in range(12):  # four minutes in steps of 20 s, both copies every step
        first.run_once(clock.now)
        second.run_once(clock.now)
        clock.advance(20)
    for _ in range(9):  # the first copy died without releasing: the second takes over at expiry
        second.run_once(clock.now)
        clock.advance(20)

    _assert_each_key_once(fired)
    assert len(fired.of("sync_full")) == 1
    assert second.holding
    minutes_seen = {tick_of(MINUTE, T0 + timedelta(seconds=20 * i)) for i in range(21)}
    # At most the minutes the lease sat expired-but-unclaimed are skipped, never repeated.
    assert len(minutes_seen) - 1 <= len(fired.of("sync_incremental")) <= len(minutes_seen)


def test_the_tick_table_alone_prevents_double_firing_by_racing_copies(engine: Engine) -> None:
    clock, fired = Clock(T0), Fired()
    copies = [_scheduler(fired, GrantingLease(), engine, name, clock) for name in ("a", "b")]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(scheduler: Scheduler, moments: list[datetime]) -> None:
        try:
            for moment in moments:
                barrier.wait(10)
                scheduler.run_once(moment)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    moments = [T0 + timedelta(seconds=30 * i) for i in range(8)]
    threads = [threading.Thread(target=run, args=(c, moments)) for c in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    _assert_each_key_once(fired)
    assert len(fired.of("sync_incremental")) == len({tick_of(MINUTE, m) for m in moments})


def test_after_a_restart_the_latest_missed_tick_runs_exactly_once(engine: Engine) -> None:
    clock, fired = Clock(T0), Fired()
    before = _scheduler(fired, DbLease(engine, "scheduler", clock=clock), engine, "old", clock)
    assert len(before.run_once(clock.now)) == 3
    before.release()

    clock.advance(3 * DAY + 5 * MINUTE)  # down for three days
    after = _scheduler(fired, DbLease(engine, "scheduler", clock=clock), engine, "new", clock)
    caught_up = after.run_once(clock.now)
    again = after.run_once(clock.now + timedelta(seconds=5))

    assert sorted(caught_up) == sorted(
        [
            "sync_full@2024-06-20T00:00:00.000000Z",
            "sync_incremental@2024-06-20T00:05:00.000000Z",
            "reconcile@2024-06-20T00:05:00.000000Z",
        ]
    )
    assert again == []
    _assert_each_key_once(fired)


def test_the_lease_moves_to_the_waiting_copy_once_released(engine: Engine) -> None:
    clock, fired = Clock(T0), Fired()
    first = _scheduler(fired, DbLease(engine, "scheduler", clock=clock), engine, "a", clock)
    second = _scheduler(fired, DbLease(engine, "scheduler", clock=clock), engine, "b", clock)

    assert first.run_once(clock.now)
    assert second.run_once(clock.advance(20)) == []  # within the lease's 30 s
    assert not second.holding
    first.release()
    assert second.run_once(clock.advance(MINUTE)) != []
    assert second.holding
    assert DbLease(engine, "scheduler", clock=clock).current_holder() == "b"
    _assert_each_key_once(fired)


def test_a_failed_enqueue_is_retried_on_the_next_loop(sqlite_engine: Engine) -> None:
    clock, fired, attempts = Clock(T0), Fired(), []

    def flaky(key: str) -> None:
        attempts.append(key)
        if len(attempts) == 1:
            raise ConnectionError("broker down")
        fired.enqueue(key)

    lease = DbLease(sqlite_engine, "scheduler", clock=clock)
    scheduler = Scheduler({"sync_full": (DAY, flaky)}, lease, DbTickStore(sqlite_engine))

    assert scheduler.run_once(clock.now) == []
    assert scheduler.run_once(clock.advance(5)) == fired.keys == [attempts[0]]


def test_changing_an_interval_neither_refires_nor_stalls_a_job(sqlite_engine: Engine) -> None:
    clock, fired = Clock(T0), Fired()  # 00:00:10
    lease, ticks = GrantingLease(), DbTickStore(sqlite_engine)
    Scheduler({"job": (5, fired.enqueue)}, lease, ticks).run_once(clock.now)
    slower = Scheduler({"job": (MINUTE, fired.enqueue)}, lease, ticks)

    assert slower.run_once(clock.advance(20)) == []  # this minute's run already happened
    assert slower.run_once(clock.advance(40)) == ["job@2024-06-17T00:01:00.000000Z"]


@pytest.mark.redis
def test_redis_lease_lets_one_copy_act_and_hands_over(
    redis_namespace: tuple[str, str], sqlite_engine: Engine
) -> None:
    url, namespace = redis_namespace
    clients = [redis.Redis.from_url(url), redis.Redis.from_url(url)]
    clock, fired = Clock(T0), Fired()
    first, second = (
        _scheduler(fired, RedisLease(c, "scheduler", namespace=namespace), sqlite_engine, n, clock)
        for c, n in zip(clients, ("a", "b"), strict=True)
    )
    try:
        for _ in range(6):
            first.run_once(clock.now)
            second.run_once(clock.now)
            clock.advance(20)
        assert first.holding and not second.holding
        assert RedisLease(clients[0], "scheduler", namespace=namespace).current_holder() == "a"

        first.release()
        assert second.run_once(clock.advance(MINUTE))
        assert second.holding
        _assert_each_key_once(fired)

        # A holder that stops renewing loses the lease when its key expires.
        second.lease_ttl = 0.2
        second.run_once(clock.now)
        deadline = time.monotonic() + 10
        while not first.run_once(clock.advance(MINUTE)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.holding
        assert not second.lease.renew("b", 30)
        _assert_each_key_once(fired)
    finally:
        for client in clients:
            client.close()


def test_sigterm_releases_the_lease_and_exits_zero(sqlite_url: str, sqlite_engine: Engine) -> None:
    script = textwrap.dedent(
        """
        import sys, threading
        from ledger.storage.engine import make_engine
        from worker.schedule.lease import DbLease
        from worker.schedule.scheduler import DbTickStore, Scheduler, stop_on_signals

        engine = make_engine(sys.argv[1])
        jobs = {"noop": (3600, lambda key: None)}
        scheduler = Scheduler(jobs, DbLease(engine, "scheduler"), DbTickStore(engine))
        stop = threading.Event()
        stop_on_signals(stop)
        scheduler.run_forever(stop, poll_seconds=0.05)
        """
    )
    lease = DbLease(sqlite_engine, "scheduler")
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    process = subprocess.Popen(
        [sys.executable, "-c", script, sqlite_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while lease.current_holder() is None and process.poll() is None:
            assert time.monotonic() < deadline, "the scheduler never took the lease"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr.decode()
    assert lease.current_holder() is None


# --- recovery: ticks claimed but never enqueued, and the recovery pass


def test_a_tick_claimed_but_never_enqueued_is_fired_again(engine: Engine) -> None:
    clock, fired = Clock(T0), Fired()
    ticks = DbTickStore(engine)
    midnight = datetime(2024, 6, 17, tzinfo=UTC)
    assert ticks.claim("sync_full", midnight, clock.now)  # its process died before enqueueing
    scheduler = _scheduler(fired, GrantingLease(), engine, "new", clock)

    scheduler.run_once(clock.advance(30))
    assert fired.of("sync_full") == []  # a claim this young may still be enqueueing
    scheduler.run_once(clock.advance(31))
    scheduler.run_once(clock.advance(MINUTE))
    assert fired.of("sync_full") == ["sync_full@2024-06-17T00:00:00.000000Z"]
    assert ticks.release_stale("sync_full", midnight, clock.now) == []  # marked enqueued


def test_recovery_runs_on_taking_the_lease_then_every_interval_before_the_jobs(
    engine: Engine,
) -> None:
    clock, fired = Clock(T0), Fired()
    passes: list[tuple[datetime, int]] = []  # (when, keys fired before it)
    lease = DbLease(engine, "scheduler", clock=clock)
    scheduler = Scheduler(
        fired.jobs(),
        lease,
        DbTickStore(engine),
        holder="a",
        clock=clock,
        recover=lambda now: passes.append((now, len(fired.keys))),
        recover_seconds=MINUTE,
    )
    rival = DbLease(engine, "scheduler", clock=clock)

    scheduler.run_once(clock.now)
    scheduler.run_once(clock.advance(20))
    scheduler.run_once(clock.advance(40))
    assert passes == [(T0, 0), (T0 + timedelta(seconds=60), 3)]  # first before any job fired

    scheduler.release()  # the lease moves away and back: the new holding starts with a pass
    assert rival.acquire("b", 30)
    assert scheduler.run_once(clock.advance(5)) == []
    rival.release("b")
    scheduler.run_once(clock.advance(5))
    assert [when for when, _ in passes][-1] == clock.now
    assert len(passes) == 3
