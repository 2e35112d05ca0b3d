"""Pruning of bookkeeping rows past their retention; the ledger (``ledger_*``) is never touched.

Only mutable bookkeeping is pruned: finished sync runs with their feeds and items, scheduler
ticks, expired leases and alert deliveries that succeeded. Each delete runs in batches of
``BATCH`` rows, one short transaction each, so a large backlog never holds a long lock.
What stays regardless of age, because something reads it:

- each source's newest ``KEEP_RUNS`` runs (status, meta-alerts and ``first_runs`` read them)
  and every run not done (closed, every planned feed finished) nor interrupted (recovery
  judges those);
- each job's newest tick (the scheduler fires the tick after it);
- an alert delivery not yet delivered (the outbox retries it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.engine import Connection, Engine

from ledger.alerts.rows import DELIVERY
from ledger.storage.sync_tables import (
    SYNC_LEASE,
    SYNC_RUN,
    SYNC_RUN_FEED,
    SYNC_RUN_ITEM,
    SYNC_TICK,
)

BATCH = 1000
KEEP_RUNS = 20  # at least facts.RECENT_RUNS, so a complete run is always found


@dataclass(frozen=True)
class Retention:
    """How long each kind of bookkeeping row is kept."""

    runs: timedelta
    ticks: timedelta
    leases: timedelta
    deliveries: timedelta


def prune(engine: Engine, retention: Retention, now: datetime) -> dict[str, int]:
    """Delete what is past its retention; rows deleted per table."""
    deleted = dict.fromkeys(
        ("sync_run", "sync_run_feed", "sync_run_item", "sync_tick", "sync_lease", "alert_delivery"),
        0,
    )
    for counts in _batches(engine, lambda conn: _prune_runs(conn, now - retention.runs)):
        for table, n in counts.items():
            deleted[table] += n
    deleted["sync_tick"] = _sum(engine, lambda conn: _prune_ticks(conn, now - retention.ticks))
    deleted["sync_lease"] = _sum(engine, lambda conn: _prune_leases(conn, now - retention.leases))
    deleted["alert_delivery"] = _sum(
        engine, lambda conn: _prune_deliveries(conn, now - retention.deliveries)
    )
    return deleted


def _batches(engine: Engine, step: Callable[[Connection], dict[str, int]]) -> list[dict[str, int]]:
    """Run ``step`` in its own transaction until it deletes nothing."""
    done: list[dict[str, int]] = []
    while True:
        with engine.begin() as conn:
            counts = step(conn)
        if not any(counts.values()):
            return done
        done.append(counts)


def _sum(engine: Engine, step: Callable[[Connection], int]) -> int:
    return sum(sum(c.values()) for c in _batches(engine, lambda conn: {"n": step(conn)}))


def _old_runs(conn: Connection, cutoff: datetime) -> list[str]:
    run, feed = SYNC_RUN.c, SYNC_RUN_FEED.c
    # a scheduled run is never closed: it is done once every planned feed finished
    planned = select(feed.run_id).where(feed.run_id == run.run_id)
    complete = and_(planned.exists(), ~planned.where(feed.finished_at.is_(None)).exists())
    found: list[str] = []
    for (source,) in conn.execute(select(run.source).distinct()):
        newest = (
            select(run.started_at)
            .where(run.source == source)
            .order_by(run.started_at.desc())
            .offset(KEEP_RUNS - 1)
            .limit(1)
        )
        keep_from = conn.execute(newest).scalar()
        if keep_from is None:
            continue  # fewer than KEEP_RUNS runs
        stmt = (
            select(run.run_id)
            .where(run.source == source, run.started_at < min(cutoff, keep_from))
            .where(or_(run.finished_at.is_not(None), run.interrupted_at.is_not(None), complete))
            .limit(BATCH - len(found))
        )
        found += conn.execute(stmt).scalars().all()
        if len(found) >= BATCH:
            break
    return found


def _prune_runs(conn: Connection, cutoff: datetime) -> dict[str, int]:
    ids = _old_runs(conn, cutoff)
    if not ids:
        return {}
    counts = {}
    for table in (SYNC_RUN_ITEM, SYNC_RUN_FEED, SYNC_RUN):
        counts[table.name] = _rowcount(conn, delete(table).where(table.c.run_id.in_(ids)))
    return counts


def _prune_ticks(conn: Connection, cutoff: datetime) -> int:
    tick = SYNC_TICK.c
    latest = select(tick.job, func.max(tick.tick)).group_by(tick.job)
    keep = {(job, last) for job, last in conn.execute(latest)}
    old = (
        select(tick.job, tick.tick)
        .where(tick.created_at < cutoff)
        .order_by(tick.job, tick.tick)
        .limit(BATCH + len(keep))
    )
    doomed = [tuple(row) for row in conn.execute(old) if tuple(row) not in keep][:BATCH]
    if not doomed:
        return 0
    return _rowcount(conn, delete(SYNC_TICK).where(tuple_(tick.job, tick.tick).in_(doomed)))


def _prune_leases(conn: Connection, cutoff: datetime) -> int:
    return _rowcount(conn, delete(SYNC_LEASE).where(SYNC_LEASE.c.expires_at < cutoff))


def _prune_deliveries(conn: Connection, cutoff: datetime) -> int:
    row = DELIVERY.c
    old = (
        select(row.alert_id, row.revision, row.sink)
        .where(and_(row.delivered_at.is_not(None), row.delivered_at < cutoff))
        .limit(BATCH)
    )
    keys = [tuple(k) for k in conn.execute(old)]
    if not keys:
        return 0
    stmt = delete(DELIVERY).where(tuple_(row.alert_id, row.revision, row.sink).in_(keys))
    return _rowcount(conn, stmt)


def _rowcount(conn: Connection, stmt: Any) -> int:
    return int(conn.execute(stmt).rowcount or 0)
