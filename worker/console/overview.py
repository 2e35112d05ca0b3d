"""What the overview shows: each source's health and syncs, the chain, open incidents by age.

Reads only, through ``source_status`` (sync cursors, runs, recovery notes), the ledger store's
head and counts, and the alert store; a few rows per source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from ledger.alerts.state import ACKNOWLEDGED, OPEN, Alert
from worker.accounts import SourceConfig
from worker.sync.state import RunState
from worker.sync.status import SourceStatus, source_status

STALE_AFTER_INTERVALS = 3  # a source this many incremental intervals behind is stale
AGE_BUCKETS = (("< 1 hour", timedelta(hours=1)), ("< 1 day", timedelta(days=1)))
OLDER = "older"
THROTTLE_WORDS = ("429", "rate limit", "ratelimit", "too many requests")


@dataclass(frozen=True)
class SourceRow:
    name: str
    health: str  # ok | stale | failing | never synced | not configured
    detail: str
    last_sync_at: datetime | None
    last_full_at: datetime | None
    last_incremental_at: datetime | None
    backlog: int | None  # follow-ups recovery found pending (None: not checked yet)
    unfinished_runs: int
    interrupted_runs: int
    limits: str  # the configured rate limit
    throttled: bool  # the latest error was the gateway's rate limit


@dataclass(frozen=True)
class Incidents:
    rule: str
    open: int
    acknowledged: int
    oldest: datetime
    by_age: Mapping[str, int]


def source_rows(
    engine: Engine,
    configured: Mapping[str, SourceConfig],
    now: datetime,
    incremental_interval_seconds: int,
) -> list[SourceRow]:
    state = RunState(engine)
    statuses = {s.source: s for s in source_status(engine)}
    stale_after = timedelta(seconds=incremental_interval_seconds * STALE_AFTER_INTERVALS)
    rows = []
    for name in sorted(configured.keys() | statuses.keys()):
        status = statuses.get(name)
        account = configured.get(name)
        limits = "-"
        if account is not None:
            limits = (
                f"{account.settings.requests_per_second} req/s, "
                f"{account.settings.max_concurrency} concurrent"
            )
        unfinished = len(state.unfinished_runs([name], now - timedelta(days=1)))
        incremental = next(
            (r.last_progress for r in state.latest_runs(name, 5, "incremental") if r.finished),
            None,
        )
        row = _row(name, status, account is not None, now, stale_after, limits)
        rows.append(
            dataclasses.replace(row, last_incremental_at=incremental, unfinished_runs=unfinished)
        )
    return rows


def _row(
    name: str,
    status: SourceStatus | None,
    configured: bool,
    now: datetime,
    stale_after: timedelta,
    limits: str,
) -> SourceRow:
    last = status.last_sync_at if status else None
    error = status.last_error if status else None
    if not configured:
        health, detail = "not configured", "synced before, no longer configured"
    elif error:
        health, detail = "failing", error[:300]
    elif last is None:
        health, detail = "never synced", "waiting for its first sync"
    elif now - last > stale_after:
        health, detail = "stale", f"no sync finished for {now - last}"
    else:
        health, detail = "ok", "syncing"
    fulls = [f.last_full_scan_at for f in status.feeds if f.last_full_scan_at] if status else []
    recovery = status.recovery if status else None
    return SourceRow(
        name=name,
        health=health,
        detail=detail,
        last_sync_at=last,
        last_full_at=min(fulls) if fulls else None,  # the feed furthest behind
        last_incremental_at=None,
        backlog=recovery.pending_follow_ups if recovery and recovery.checked_at else None,
        unfinished_runs=0,
        interrupted_runs=status.interrupted_runs if status else 0,
        limits=limits,
        throttled=bool(error) and any(w in (error or "").lower() for w in THROTTLE_WORDS),
    )


def incidents(alerts: Iterable[Alert], now: datetime) -> list[Incidents]:
    """Live alerts grouped by rule: how many, how acknowledged, how old (by first seen)."""
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        if alert.status in (OPEN, ACKNOWLEDGED):
            by_rule.setdefault(alert.rule, []).append(alert)
    found = []
    for rule, group in sorted(by_rule.items()):
        ages: dict[str, int] = {label: 0 for label, _ in AGE_BUCKETS} | {OLDER: 0}
        for alert in group:
            age = now - alert.first_seen_at
            label = next((lbl for lbl, limit in AGE_BUCKETS if age < limit), OLDER)
            ages[label] += 1
        found.append(
            Incidents(
                rule,
                sum(a.status == OPEN for a in group),
                sum(a.status == ACKNOWLEDGED for a in group),
                min(a.first_seen_at for a in group),
                ages,
            )
        )
    return found
