"""Quiet when idle: a scheduler ticking with nothing to do logs nothing above debug after the
first tick of each job; one line when the lease changes hands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from ledger.storage.engine import make_engine, upgrade
from worker.schedule.lease import DbLease
from worker.schedule.scheduler import DbTickStore, Scheduler


def test_an_idle_scheduler_logs_nothing_above_debug_after_its_first_ticks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/quiet.db"
    upgrade(url)
    engine = make_engine(url)
    now = [datetime(2026, 6, 1, tzinfo=UTC)]
    fired: list[str] = []
    scheduler = Scheduler(
        {"sync_incremental": (5, fired.append), "reconcile": (5, fired.append)},
        DbLease(engine, "scheduler", clock=lambda: now[0]),
        DbTickStore(engine),
        clock=lambda: now[0],
    )
    with capture_logs() as first:
        scheduler.run_once()
    with capture_logs() as later:
        for _ in range(50):  # 50 ticks of each job
            now[0] += timedelta(seconds=5)
            scheduler.run_once()
    engine.dispose()
    assert len(fired) == 2 + 100
    assert [e["event"] for e in first if e["log_level"] != "debug"] == [
        "scheduler_lease_acquired",
        "scheduler_tick_enqueued",
        "scheduler_tick_enqueued",
    ]
    assert [e for e in later if e["log_level"] != "debug"] == []
