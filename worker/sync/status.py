"""What the sync and the alerts look like now, read from the database: each source's feeds,
last success, latest run and recovery backlog, and the live alerts by rule. For ``tally status``,
readiness and the ledger-state gauges; reads only (through ``RunState``, ``RecoveryNotes`` and
``AlertStore``), a few rows per source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from ledger.alerts.store import AlertStore
from ledger.storage.store import LedgerStore
from worker.metrics import FeedState, LedgerState
from worker.sync.recovery_notes import RecoveryNote, RecoveryNotes
from worker.sync.state import SOURCE_FEED, Cursor, RunState, RunSummary

INTERRUPTED_WINDOW = timedelta(days=1)  # how far back status counts interrupted runs


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
class SourceStatus:
    source: str
    feeds: tuple[FeedStatus, ...]
    last_call_at: datetime | None  # the source's last successful call of any kind
    last_error: str | None
    first_run_at: datetime | None
    latest_run: RunSummary | None
    recovery: RecoveryNote | None = None  # None: no scheduler ever ran recovery
    interrupted_runs: int = 0  # within INTERRUPTED_WINDOW

    @property
    def last_sync_at(self) -> datetime | None:
        times = [f.last_success_at for f in self.feeds if f.last_success_at is not None]
        return max(times) if times else None


def source_status(engine: Engine) -> list[SourceStatus]:
    """Every source that has a cursor or a run, with its feeds and its latest run."""
    state = RunState(engine)
    by_source: dict[str, list[Cursor]] = {}
    for cursor in state.cursors():
        by_source.setdefault(cursor.source, []).append(cursor)
    first_runs = state.first_runs()
    notes = RecoveryNotes(engine).notes()
    sources = sorted(by_source.keys() | first_runs.keys() | notes.keys())
    interrupted = state.interrupted_counts(sources, utc_now() - INTERRUPTED_WINDOW)
    found = []
    for source in sources:
        cursors = by_source.get(source, [])
        marker = next((c for c in cursors if c.feed == SOURCE_FEED), None)
        feeds = tuple(
            FeedStatus(c.feed, c.last_success_at, c.high_water, c.last_full_scan_at)
            for c in cursors
            if c.feed != SOURCE_FEED
        )
        latest = state.latest_runs(source, 1)
        found.append(
            SourceStatus(
                source,
                feeds,
                marker.last_success_at if marker else None,
                marker.last_error if marker else None,
                first_runs.get(source),
                latest[0] if latest else None,
                notes.get(source),
                interrupted.get(source, 0),
            )
        )
    return found


def alerts_by_rule(engine: Engine) -> dict[tuple[str, str], int]:
    """(rule, status) → how many alerts are open or acknowledged."""
    return AlertStore(engine).live_counts()


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
