"""Can this deployment work? Settings, database, Redis, and one authenticated request per source.

``tally doctor`` prints every check with a fix hint; ``tally sync`` runs the reachability ones
first, so an unreachable gateway or a refused key ends it within seconds, in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from worker.config import Settings
from worker.errors import AuthError, ConfigError, ProviderError, cause, public_url, unreachable

PING_TIMEOUT_SECONDS = 3.0
# Credential-looking fields a refused request should name (not the callbacks' own secrets).
CREDENTIAL_SUFFIXES = ("_key", "_token", "_secret")
NOT_CREDENTIALS = ("callback_", "webhook_")


@dataclass(frozen=True)
class Check:
    """One check: what was checked, whether it passed, what was found, and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix or None}


def check_database(settings: Settings) -> Check:
    """The database answers and its schema is current (never creates one)."""
    from ledger.errors import LedgerError
    from ledger.storage.engine import check_schema, make_engine

    where = public_url(settings.database_url)
    if settings.database_url.startswith("sqlite:///"):
        import os

        path = settings.database_url.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:" and not os.path.exists(path):
            return Check("database", False, f"no ledger at {where}", "run `tally db upgrade`")
    engine = make_engine(settings.database_url)
    try:
        revision = check_schema(engine)
    except LedgerError as exc:
        return Check("database", False, f"{where}: {exc}", "run `tally db upgrade`")
    except Exception as exc:
        line = unreachable(exc, settings) or f"{where}: {cause(exc)}"
        return Check("database", False, line, "check DATABASE_URL and that the server is up")
    finally:
        engine.dispose()
    return Check("database", True, f"{where} at revision {revision}")


def check_redis(settings: Settings) -> Check:
    """Redis answers a PING (or none is configured: the embedded broker)."""
    if not settings.redis_url:
        return Check("redis", True, "not configured: embedded broker (one process)")
    from worker.redis_client import connect_redis

    client = connect_redis(settings, timeout=PING_TIMEOUT_SECONDS)
    assert client is not None
    try:
        client.ping()
    except Exception as exc:
        line = unreachable(exc, settings) or f"Redis: {cause(exc)}"
        return Check("redis", False, line, "check REDIS_URL and that Redis is up")
    finally:
        client.close()
    return Check("redis", True, f"{public_url(settings.redis_url)} answers")


def check_sources(settings: Settings, names: list[str] | None = None) -> Iterator[Check]:
    """One authenticated request per source: the first page of its first feed (with the
    source's bounded in-call retries, ``<GATEWAY>_IN_CALL_RETRIES``)."""
    from worker.runtime import build_sources

    if not settings.sources:
        yield Check("sources", False, str(settings.accounts.none_configured()), _setup_hint())
        return
    sources = build_sources(settings, None)
    try:
        for name in names or list(sources):
            source, config = sources[name], settings.sources[name]
            base_url = getattr(config.settings, "base_url", "")
            try:
                page = source.fetch_page(source.feeds[0], 1)
            except AuthError as exc:
                names_ = " or ".join(credential_variables(config.settings)) or "its credentials"
                yield Check(
                    f"source {name}",
                    False,
                    f"{base_url} refused the credentials (HTTP {exc.status or 401})",
                    f"check {names_}",
                )
            except ProviderError as exc:
                line = unreachable(exc) or f"{base_url}: {exc}"
                fix = f"check {config.settings.variable('base_url')} and that the gateway is up"
                yield Check(f"source {name}", False, line, fix)
            else:
                detail = f"{base_url} answered ({source.feeds[0]} page 1: {len(page.records)})"
                yield Check(f"source {name}", True, detail)
    finally:
        for source in sources.values():
            source.close()


def credential_variables(account: Any) -> list[str]:
    """The variables of the credentials ``account`` has set, e.g. ``AURPAY_API_KEY``."""
    return [
        account.variable(field)
        for field in type(account).model_fields
        if field.endswith(CREDENTIAL_SUFFIXES)
        and not field.startswith(NOT_CREDENTIALS)
        and getattr(account, field) is not None
    ]


def check_settings() -> tuple[Check, Settings | None]:
    """Every setting of every group, validated; the settings when they all are."""
    from worker.config import EVERY_GROUP, load_settings

    try:
        settings = load_settings(uses=EVERY_GROUP)
    except ConfigError as exc:
        return Check("settings", False, str(exc), "fix that variable (docs/configuration.md)"), None
    sources = ", ".join(settings.sources) or "no source configured"
    return Check("settings", True, f"valid ({sources})"), settings


def _setup_hint() -> str:
    return "set AURPAY_API_KEY or EBIORO_PUBLIC_KEY + EBIORO_SECRET_KEY (try `tally sandbox --env`)"
