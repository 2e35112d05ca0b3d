"""What the sync and the alerts look like now, read from the database: each source's feeds,
last success and latest run, and the live alerts by rule. For ``tally status``, readiness and
the ledger-state gauges; reads only, a few rows per source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ledger.alerts.rows import ALERT
from ledger.alerts.state import ACKNOWLEDGED, OPEN
from ledger.storage.engine import read_only
from ledger.storage.store import LedgerStore
from worker.metrics import FeedState, LedgerState
from worker.sync.facts import SOURCE_FEED
from worker.sync.state import CURSOR, FEED, ITEM, RUN


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_age(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


@dataclass(frozen=True)
class FeedStatus:
    feed: str
    last_success_at: datetime | None  # the last run of this feed that finished
    high_water: datetime | None  # creation time of the newest object seen
    last_full_scan_at: datetime | None


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    mode: str
    started_at: datetime
    finished: bool
    pages: int
    pages_expected: int
    rejected: int
    error: str | None


@dataclass(frozen=True)
class SourceStatus:
    source: str
    feeds: tuple[FeedStatus, ...]
    last_call_at: datetime | None  # the source's last successful call of any kind
    last_error: str | None
    first_run_at: datetime | None
    latest_run: RunStatus | None

    @property
    def last_sync_at(self) -> datetime | None:
        times = [f.last_success_at for f in self.feeds if f.last_success_at is not None]
        return max(times) if times else None


def _latest_run(conn: Any, source: str) -> RunStatus | None:
    run = (
        conn.execute(
            select(RUN)
            .where(RUN.c.source == source)
            .order_by(RUN.c.started_at.desc(), RUN.c.run_id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if run is None:
        return None
    rid = run["run_id"]
    pages, rejected = conn.execute(
        select(
            func.coalesce(func.sum(ITEM.c.pages), 0), func.coalesce(func.sum(ITEM.c.rejected), 0)
        ).where(ITEM.c.run_id == rid)
    ).one()
    planned, expected, done = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(FEED.c.pages_expected), 0),
            func.count(FEED.c.finished_at),
        ).where(FEED.c.run_id == rid)
    ).one()
    finished = run["finished_at"] is not None or (planned > 0 and planned == done)
    return RunStatus(
        rid,
        run["mode"],
        run["started_at"],
        finished,
        int(pages),
        int(expected),
        int(rejected),
        run["error"],
    )


def source_status(engine: Engine) -> list[SourceStatus]:
    """Every source that has a cursor or a run, with its feeds and its latest run."""
    with read_only(engine).connect() as conn:
        cursors = conn.execute(select(CURSOR).order_by(CURSOR.c.source, CURSOR.c.feed)).mappings()
        by_source: dict[str, list[Any]] = {}
        for row in cursors:
            by_source.setdefault(row["source"], []).append(row)
        first_runs = {
            source: started
            for source, started in conn.execute(
                select(RUN.c.source, func.min(RUN.c.started_at)).group_by(RUN.c.source)
            )
        }
        found = []
        for source in sorted(by_source.keys() | first_runs.keys()):
            rows = by_source.get(source, [])
            marker = next((r for r in rows if r["feed"] == SOURCE_FEED), None)
            feeds = tuple(
                FeedStatus(r["feed"], r["last_success_at"], r["high_water"], r["last_full_scan_at"])
                for r in rows
                if r["feed"] != SOURCE_FEED
            )
            found.append(
                SourceStatus(
                    source,
                    feeds,
                    marker["last_success_at"] if marker else None,
                    marker["last_error"] if marker else None,
                    first_runs.get(source),
                    _latest_run(conn, source),
                )
            )
    return found


def alerts_by_rule(engine: Engine) -> dict[tuple[str, str], int]:
    """(rule, status) → how many alerts are open or acknowledged."""
    live = (OPEN, ACKNOWLEDGED)
    stmt = (
        select(ALERT.c.rule, ALERT.c.status, func.count())
        .where(ALERT.c.status.in_(live))
        .group_by(ALERT.c.rule, ALERT.c.status)
    )
    with read_only(engine).connect() as conn:
        return {(rule, status): int(n) for rule, status, n in conn.execute(stmt)}


def ledger_state(store: LedgerStore) -> LedgerState:
    """What the ledger-state gauges export."""
    statuses = source_status(store.engine)
    feeds = [
        FeedState(s.source, f.feed, f.high_water, f.last_full_scan_at)
        for s in statuses
        for f in s.feeds
    ]
    last = {s.source: s.last_sync_at for s in statuses}
    return LedgerState(feeds, last, alerts_by_rule(store.engine), store.head()[0])
