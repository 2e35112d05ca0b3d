"""Is the deployment healthy? Readiness checks (database migrated, broker reachable, a recent
successful sync), the sync facts behind ``tally status`` and the gauges, and the ops server.

Checks return values (``Check``, ``Readiness``); the callers decide to print, serve or exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ledger.alert_rows import ALERT
from ledger.alerts import ACKNOWLEDGED, OPEN
from ledger.db import check_schema, read_only
from ledger.errors import LedgerError
from ledger.store import LedgerStore
from worker.config import Settings
from worker.errors import ConfigError
from worker.metrics import FeedState, LedgerState, LedgerStateCollector, OpsServer
from worker.state import CURSOR, FEED, ITEM, RUN
from worker.sync_health import SOURCE_FEED

Ping = Callable[[], str]


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


# --- sync facts


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
        first_runs = dict(
            conn.execute(select(RUN.c.source, func.min(RUN.c.started_at)).group_by(RUN.c.source))
            .tuples()
            .all()
        )
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


# --- readiness


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def reason(self) -> str:
        """One line: what is wrong, or what is fine."""
        if self.ok:
            return "ready: " + " · ".join(c.detail for c in self.checks)
        return "not ready: " + "; ".join(c.detail for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ok,
            "reason": self.reason,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_database(engine: Engine) -> Check:
    try:
        revision = check_schema(engine)
    except LedgerError as exc:
        return Check("database", False, str(exc))
    return Check("database", True, f"database at rev {revision}")


def check_broker(ping: Ping | None) -> Check:
    if ping is None:
        return Check("broker", True, "embedded broker")
    try:
        return Check("broker", True, ping())
    except Exception as exc:  # any failure to reach the broker is the answer, not a crash
        return Check("broker", False, f"broker unreachable ({_first_line(exc)})")


def check_sync(
    statuses: Iterable[SourceStatus],
    sources: Sequence[str],
    now: datetime,
    max_age_seconds: int,
    started_at: datetime | None = None,
) -> Check:
    """Every configured source finished a sync within ``max_age_seconds`` (0: not checked).

    A source that never synced gets that long from its first run (or, before any run, from
    ``started_at``, the process start) before it counts as stale.
    """
    if not max_age_seconds:
        return Check("sync", True, "sync age not checked")
    known = {s.source: s for s in statuses}
    fine, stale = [], []
    for name in sources:
        status = known.get(name)
        last = status.last_sync_at if status else None
        since = (status.first_run_at if status else None) or started_at
        if last is not None and (now - last).total_seconds() <= max_age_seconds:
            fine.append(f"{name} synced {format_age((now - last).total_seconds())} ago")
            continue
        if last is None and since is not None and (now - since).total_seconds() <= max_age_seconds:
            fine.append(f"{name} waiting for its first sync")
            continue
        why = f"{name} has never synced"
        if last is not None:
            age, limit = format_age((now - last).total_seconds()), format_age(max_age_seconds)
            why = f"{name} last synced {age} ago (limit {limit})"
        if status and status.last_error:
            why += f": {status.last_error[:200]}"
        stale.append(why)
    if stale:
        return Check("sync", False, "; ".join(stale))
    return Check("sync", True, ", ".join(fine) or "no source configured")


def readiness(
    engine: Engine,
    ping: Ping | None,
    sources: Sequence[str],
    now: datetime,
    max_age_seconds: int,
    started_at: datetime | None = None,
) -> Readiness:
    database = check_database(engine)
    checks = [database, check_broker(ping)]
    if database.ok:  # the sync facts live in the database
        checks.append(check_sync(source_status(engine), sources, now, max_age_seconds, started_at))
    return Readiness(tuple(checks))


def configured_sources(settings: Settings) -> list[str]:
    return [
        n
        for n, on in (("aurpay", settings.aurpay_enabled), ("ebioro", settings.ebioro_enabled))
        if on
    ]


PING_TIMEOUT_SECONDS = 5  # a health check that hangs is worse than one that fails


def deployment_readiness(settings: Settings, engine: Engine) -> Readiness:
    """Readiness seen from outside the processes (``tally health``, ``tally status``)."""
    client = None
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=PING_TIMEOUT_SECONDS,
            socket_connect_timeout=PING_TIMEOUT_SECONDS,
        )
    try:
        return readiness(
            engine,
            redis_ping(client) if client is not None else None,
            configured_sources(settings),
            utc_now(),
            settings.tally_ready_max_sync_age_seconds,
        )
    finally:
        if client is not None:
            client.close()


def redis_ping(client: redis.Redis) -> Ping:
    def ping() -> str:
        client.ping()
        return "broker redis reachable"

    return ping


def broker_ping(broker: dramatiq.Broker) -> Ping | None:
    """How to reach ``broker``'s server, or None for the embedded (in-process) broker."""
    return redis_ping(broker.client) if isinstance(broker, RedisBroker) else None


# --- the ops server of a long-running process


def serve_ops(
    settings: Settings,
    store: LedgerStore,
    broker: dramatiq.Broker,
    sources: Sequence[str],
    *,
    ledger_gauges: bool,
    sync_age: bool = True,
    clock: Callable[[], datetime] = utc_now,
) -> OpsServer | None:
    """Start /metrics, /healthz and /readyz on ``TALLY_METRICS_PORT`` (None when it is 0).

    ``sync_age=False`` leaves the sync's age out of /readyz: a callbacks server only enqueues,
    and should keep taking callbacks while a gateway's API is down.
    """
    if not settings.tally_metrics_port:
        return None
    started, ping = clock(), broker_ping(broker)
    max_age = settings.tally_ready_max_sync_age_seconds if sync_age else 0

    def ready() -> Readiness:
        return readiness(store.engine, ping, sources, clock(), max_age, started)

    collector = LedgerStateCollector(lambda: ledger_state(store), clock) if ledger_gauges else None
    host, port = settings.tally_metrics_host, settings.tally_metrics_port
    try:
        server = OpsServer(host, port, ready, collector=collector)
    except OSError as exc:
        raise ConfigError(
            f"invalid setting TALLY_METRICS_PORT: cannot listen on {host}:{port} ({exc.strerror})"
        ) from None
    server.start()
    return server
