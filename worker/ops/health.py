"""Is the deployment ready? The checks behind ``/readyz`` (this process can serve: database
migrated, broker reachable) and ``tally health`` (those, plus a recent successful sync and
recovery's check), and the ops server of a process.

A stale source never makes a process unready: during a gateway outage new pods must still
become Ready, or the rollout of the fix stalls. Staleness is a metric
(``tally_source_last_sync_timestamp_seconds``) and an alert (deploy/prometheus/).

Checks return values (``Check``, ``Readiness``); the callers decide to print, serve or exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from ledger.errors import LedgerError
from ledger.storage.engine import check_schema
from ledger.storage.store import LedgerStore
from worker.config import Settings
from worker.errors import ConfigError
from worker.metrics import LedgerStateCollector
from worker.ops.server import Companion, OpsServer
from worker.ops.state import deployment_state, queue_state
from worker.ops.verify import ChainVerifier
from worker.redis_client import connect_redis
from worker.sync.actors import QUEUES
from worker.sync.status import SourceStatus, format_age, source_status, utc_now

Ping = Callable[[], str]


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


def check_recovery(statuses: Iterable[SourceStatus], sources: Sequence[str]) -> Check | None:
    """Recovery checked every source since the scheduler started; None when no scheduler ever
    ran it (``tally sync --once`` alone). Before that check the backlog is unknown."""
    notes = {s.source: s.recovery for s in statuses if s.recovery is not None}
    if not notes:
        return None
    unchecked = [n for n in sources if n not in notes or not notes[n].checked_since_start]
    if unchecked:
        names = ", ".join(unchecked)
        why = f"recovery has not checked {names} since the scheduler started (backlog unknown)"
        return Check("recovery", False, why)
    pending = sum(notes[n].pending_follow_ups for n in sources)
    return Check("recovery", True, f"recovery found {pending} follow-ups pending")


def readiness(
    engine: Engine,
    ping: Ping | None,
    sources: Sequence[str],
    now: datetime,
    max_age_seconds: int,
    started_at: datetime | None = None,
    *,
    recovery: bool = False,
) -> Readiness:
    """``recovery``: also require recovery's check since the scheduler started (the deployment
    view of ``tally status`` and ``tally health``; a process's /readyz leaves it out)."""
    database = check_database(engine)
    checks = [database, check_broker(ping)]
    if database.ok:  # the sync facts live in the database
        statuses = source_status(engine)
        checks.append(check_sync(statuses, sources, now, max_age_seconds, started_at))
        recovered = check_recovery(statuses, sources) if recovery else None
        if recovered is not None:
            checks.append(recovered)
    return Readiness(tuple(checks))


def can_serve(engine: Engine, ping: Ping | None) -> Readiness:
    """A process's readiness (``/readyz``): the database is reachable and migrated, and the
    broker answers. Nothing about the gateways."""
    return Readiness((check_database(engine), check_broker(ping)))


def configured_sources(settings: Settings) -> list[str]:
    return list(settings.sources)


PING_TIMEOUT_SECONDS = 5  # a health check that hangs is worse than one that fails


def deployment_readiness(settings: Settings, engine: Engine) -> Readiness:
    """Readiness seen from outside the processes (``tally health``, ``tally status``): their
    one Redis client, with a timeout (a long-running process pings its broker's instead)."""
    client = connect_redis(settings, timeout=PING_TIMEOUT_SECONDS)
    try:
        return readiness(
            engine,
            redis_ping(client) if client is not None else None,
            configured_sources(settings),
            utc_now(),
            settings.tally_ready_max_sync_age_seconds,
            recovery=True,
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
    clock: Callable[[], datetime] = utc_now,
) -> OpsServer | None:
    """Start /metrics, /healthz and /readyz on ``TALLY_METRICS_PORT`` (None when it is 0).

    /readyz is ``can_serve``: database and broker. With ``ledger_gauges`` (the scheduler, one
    per deployment) it also exports the deployment's gauges (``sources``' sync state, alerts,
    queues) and verifies the hash chain every few hours.
    """
    if not settings.tally_metrics_port:
        return None
    ping = broker_ping(broker)

    def ready() -> Readiness:
        return can_serve(store.engine, ping)

    collectors: list[Collector] = []
    companions: list[Companion] = []
    if ledger_gauges:
        intervals = {
            "incremental": settings.sync_incremental_interval_seconds,
            "full": settings.sync_full_scan_interval_seconds,
        }
        collectors.append(
            LedgerStateCollector(
                lambda: deployment_state(store),
                clock,
                sources=sources,
                intervals=intervals,
                queues=lambda: queue_state(broker, QUEUES),
            )
        )
        verifier = ChainVerifier(store, clock=clock)
        collectors.append(verifier.collector)
        companions.append(verifier)
    host, port = settings.tally_metrics_host, settings.tally_metrics_port
    try:
        server = OpsServer(host, port, ready, collectors=collectors, companions=companions)
    except OSError as exc:
        raise ConfigError(
            f"invalid setting TALLY_METRICS_PORT: cannot listen on {host}:{port} ({exc.strerror})"
        ) from None
    server.start()
    return server
