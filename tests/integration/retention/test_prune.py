"""The prune job deletes bookkeeping past its retention and keeps what is still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from ledger.alerts.rows import DELIVERY
from ledger.storage.engine import make_engine
from ledger.storage.retention import KEEP_RUNS, Retention
from ledger.storage.sync_tables import SYNC_LEASE, SYNC_RUN, SYNC_RUN_FEED, SYNC_RUN_ITEM, SYNC_TICK
from worker.errors import ConfigError
from worker.metrics import REGISTRY
from worker.retention.job import prune_job, run_prune
from worker.retention.settings import load_retention

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
RETENTION = Retention(runs=30 * DAY, ticks=2 * DAY, leases=DAY, deliveries=30 * DAY)


@pytest.fixture
def engine(ledger_url: str) -> Engine:
    return make_engine(ledger_url)


def _run(conn: object, run_id: str, source: str, started: datetime, *, done: bool) -> None:
    conn.execute(  # type: ignore[attr-defined]
        insert(SYNC_RUN).values(
            run_id=run_id, source=source, mode="incremental", started_at=started
        )
    )
    conn.execute(  # type: ignore[attr-defined]
        insert(SYNC_RUN_FEED).values(
            run_id=run_id, feed="orders", pages_expected=1, finished_at=started if done else None
        )
    )
    conn.execute(  # type: ignore[attr-defined]
        insert(SYNC_RUN_ITEM).values(run_id=run_id, item="orders#1", done_at=started)
    )


def _count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_prunes_bookkeeping_past_retention_and_keeps_what_is_read(engine: Engine) -> None:
    with engine.begin() as conn:
        # 60 done runs a day apart for one source, plus an old run never done (recovery's)
        for n in range(60):
            _run(conn, f"a:{n}", "aurpay", NOW - (60 - n) * DAY, done=True)
        _run(conn, "a:open", "aurpay", NOW - 90 * DAY, done=False)
        # another source with few runs: all kept, however old
        for n in range(3):
            _run(conn, f"e:{n}", "ebioro", NOW - 400 * DAY, done=True)
        for n in range(100):  # ticks a minute apart, three days ago
            conn.execute(
                insert(SYNC_TICK).values(
                    job="sync_incremental", tick=n, status="enqueued", created_at=NOW - 3 * DAY
                )
            )
        conn.execute(  # the job's newest tick, old as well: kept so the next tick is known
            insert(SYNC_TICK).values(
                job="sync_full", tick=1, status="enqueued", created_at=NOW - 9 * DAY
            )
        )
        conn.execute(insert(SYNC_LEASE).values(name="old", holder="h", expires_at=NOW - 2 * DAY))
        conn.execute(insert(SYNC_LEASE).values(name="live", holder="h", expires_at=NOW + DAY))
        for revision, delivered in ((1, NOW - 40 * DAY), (2, NOW - DAY), (3, None)):
            conn.execute(
                insert(DELIVERY).values(
                    alert_id=1,
                    revision=revision,
                    sink="log",
                    delivered_at=delivered,
                    updated_at=NOW - 40 * DAY,
                )
            )

    deleted = run_prune(engine, RETENTION, NOW)

    # runs older than 30 days go, with their feeds and items; the open one stays
    assert _count(engine, SYNC_RUN, SYNC_RUN.c.source == "aurpay") == 30 + 1
    assert _count(engine, SYNC_RUN, SYNC_RUN.c.source == "ebioro") == 3
    assert (
        _count(engine, SYNC_RUN_ITEM) == _count(engine, SYNC_RUN) == _count(engine, SYNC_RUN_FEED)
    )
    assert deleted["sync_run"] == 30 and deleted["sync_run_item"] == 30
    assert _count(engine, SYNC_TICK, SYNC_TICK.c.job == "sync_incremental") == 1  # the newest
    assert _count(engine, SYNC_TICK, SYNC_TICK.c.job == "sync_full") == 1
    with engine.connect() as conn:
        assert conn.execute(select(SYNC_LEASE.c.name)).scalars().all() == ["live"]
        assert sorted(conn.execute(select(DELIVERY.c.revision)).scalars()) == [2, 3]
    pruned = REGISTRY.get_sample_value("tally_retention_pruned_rows_total", {"table": "sync_tick"})
    assert pruned is not None and pruned >= 99

    assert not any(run_prune(engine, RETENTION, NOW).values())  # nothing left to do


def test_keeps_each_sources_newest_runs_whatever_their_age(engine: Engine) -> None:
    with engine.begin() as conn:
        for n in range(KEEP_RUNS + 5):
            _run(conn, f"a:{n}", "aurpay", NOW - (400 - n) * DAY, done=True)
    run_prune(engine, RETENTION, NOW)
    assert _count(engine, SYNC_RUN) == KEEP_RUNS


def test_the_scheduler_job_uses_the_settings(engine: Engine) -> None:
    interval, run = prune_job(
        engine, load_retention(tally_retention_prune_interval_seconds=5), lambda: NOW
    )
    assert interval == 5
    run("prune@x")  # an empty database: nothing to do, no error


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tally_retention_runs_seconds", 0),
        ("tally_retention_deliveries_seconds", 3600),  # shorter than the outbox's redelivery
        ("tally_replay_cache_max_entries", "lots"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_retention(**{name: value})
    message = str(err.value)
    assert name.upper() in message and "\n" not in message
