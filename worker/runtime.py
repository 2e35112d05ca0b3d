"""Per-process resources built from settings: the ledger store, run state and source clients.

One ``Runtime`` per process, created at boot and closed at shutdown; actors reach it through
``current()``. Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ledger.storage.engine import open_ledger
from ledger.storage.store import LedgerStore
from worker.config import Settings
from worker.errors import ConfigError
from worker.gateways.contract import Source
from worker.sync.engine import SyncContext
from worker.sync.state import RunState


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_sources(settings: Settings) -> dict[str, Source]:
    """Every source whose credentials are set, each client sharing the process's rate limiter."""
    from worker.limits.ratelimit import SourceLimiter, rate_limit_backend

    sources: dict[str, Source] = {}
    if settings.aurpay_enabled:
        from worker.gateways.aurpay.client import AurpayClient
        from worker.gateways.aurpay.source import AurpaySource

        limiter = SourceLimiter.for_aurpay(rate_limit_backend(settings), settings)
        sources["aurpay"] = AurpaySource(AurpayClient.from_settings(settings, limiter=limiter))
    if settings.ebioro_enabled:
        from worker.gateways.ebioro.client import EbioroClient
        from worker.gateways.ebioro.source import EbioroSource

        limiter = SourceLimiter(
            rate_limit_backend(settings),
            "ebioro",
            settings.ebioro_max_concurrency,
            settings.ebioro_requests_per_second,
            namespace=settings.redis_namespace,
        )
        sources["ebioro"] = EbioroSource(EbioroClient.from_settings(settings, limiter=limiter))
    return sources


@dataclass
class Runtime:
    settings: Settings
    store: LedgerStore
    state: RunState
    sources: dict[str, Source]
    now: Callable[[], datetime] = field(default=utc_now)

    @property
    def sync(self) -> SyncContext:
        return SyncContext(
            self.store,
            self.state,
            self.sources,
            self.now,
            timedelta(seconds=self.settings.sync_lookback_seconds),
        )

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
        self.store.close()


def build_runtime(
    settings: Settings, *, auto_upgrade: bool | None = None, require_sources: bool = True
) -> Runtime:
    """Open the ledger (migrating SQLite on first use unless told otherwise) and the sources."""
    if auto_upgrade is None:
        auto_upgrade = not settings.is_postgres
    store = open_ledger(
        settings.database_url, settings.precision_table(), auto_upgrade=auto_upgrade
    )
    sources = build_sources(settings)
    if require_sources and not sources:
        store.close()
        raise ConfigError(
            "invalid setting AURPAY_API_KEY: no source is configured "
            "(set AURPAY_API_KEY, or AURPAY_API_TOKEN and AURPAY_API_SECRET)"
        )
    return Runtime(settings, store, RunState(store.engine), sources)


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no runtime installed in this process (worker/runtime.install)")
    return _current
