"""Per-process resources built from settings: ledger store, run state, sources, Redis client.

One ``Runtime`` per process, created at boot and closed at shutdown; actors reach it through
``current()``. Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from ledger.journal.postings import Deriver
from ledger.reconcile.plans import SourcePlan
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from worker.config import Settings
from worker.gateways.books import deriver_table, plan_table
from worker.gateways.contract import Gateway, Source
from worker.redis_client import connect_redis
from worker.sync.engine import SyncContext
from worker.sync.state import RunState


def utc_now() -> datetime:
    return datetime.now(UTC)


def gateways_by_source(settings: Settings) -> dict[str, Gateway[Any]]:
    """The gateway of every source the ledger may hold: each configured source, and each
    gateway under its own name (rows of a source since unconfigured still post and reconcile)."""
    books: dict[str, Gateway[Any]] = {g.name: g for g in settings.accounts.registry}
    books.update({name: source.gateway for name, source in settings.sources.items()})
    return books


def ledger_derivers(settings: Settings) -> dict[tuple[str, str], Deriver]:
    """The (source, kind) → deriver table the ledger store appends with."""
    return deriver_table({n: g.derivers for n, g in gateways_by_source(settings).items()})


def reconcile_plans(settings: Settings) -> dict[str, SourcePlan]:
    """The source → reconcile plan table the reconcile service judges with."""
    return plan_table({n: g.make_plan for n, g in gateways_by_source(settings).items()})


def build_sources(settings: Settings, redis_client: redis.Redis | None) -> dict[str, Source]:
    """Every configured source, each paced by its own limiter (over Redis: across processes)."""
    from worker.limits.ratelimit import SourceLimiter, rate_limit_backend

    backend = rate_limit_backend(redis_client)
    sources: dict[str, Source] = {}
    try:
        for name, config in settings.sources.items():
            limiter = SourceLimiter.for_account(
                backend, name, config.settings, namespace=settings.redis_namespace
            )
            sources[name] = config.gateway.build_source(name, config.settings, limiter)
    except BaseException:
        for source in sources.values():
            source.close()
        raise
    return sources


@dataclass
class Runtime:
    settings: Settings
    store: LedgerStore
    state: RunState
    sources: dict[str, Source]
    redis_client: redis.Redis | None  # the process's one Redis client (worker.redis_client)
    now: Callable[[], datetime] = field(default=utc_now)

    @property
    def sync(self) -> SyncContext:
        return SyncContext(
            self.store,
            self.state,
            self.sources,
            self.now,
            timedelta(seconds=self.settings.sync_lookback_seconds),
            timedelta(seconds=self.settings.tally_future_skew_seconds),
        )

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
        self.store.close()
        if self.redis_client is not None:
            self.redis_client.close()


def build_runtime(
    settings: Settings, *, auto_upgrade: bool | None = None, require_sources: bool = True
) -> Runtime:
    """Open the ledger (migrating SQLite on first use unless told otherwise) and the sources."""
    if auto_upgrade is None:
        auto_upgrade = not settings.is_postgres
    store = open_ledger(
        settings.database_url,
        settings.precision_table(),
        auto_upgrade=auto_upgrade,
        derivers=ledger_derivers(settings),
    )
    if require_sources and not settings.sources:
        store.close()
        raise settings.accounts.none_configured()
    redis_client = connect_redis(settings)
    try:
        sources = build_sources(settings, redis_client)
    except BaseException:
        store.close()
        if redis_client is not None:
            redis_client.close()
        raise
    return Runtime(settings, store, RunState(store.engine), sources, redis_client)


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no runtime installed in this process (worker/runtime.install)")
    return _current
