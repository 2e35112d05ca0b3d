"""Settings: the only reader of the environment (and of an optional ``.env`` file).

Every setting is an environment variable with the field's name in upper case. A gateway's
settings are its own model, one instance per account (``worker.accounts``: ``TALLY_SOURCES``,
``AURPAY_API_KEY``, ``AURPAY_EU_API_KEY``, …). ``load_settings`` validates them all at startup
and turns any problem into a one-line ``ConfigError`` naming the variable. Secrets are
``SecretStr`` so they never show in a repr, a log line or a traceback.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.precision import PrecisionTable
from ledger.reconcile.policy import RulePolicy
from worker.accounts import Accounts, SourceConfig, config_error, load_accounts
from worker.alerts.settings import RuleSettings, load_policy
from worker.gateways.contract import InboundPolicy
from worker.gateways.registry import REGISTRY, Registry


class Settings(BaseSettings):
    """All of tally's settings. See deploy/env.example for one line on each."""

    # env_ignore_empty: ``NAME=`` (as in deploy/env.example or an empty Secret key) means unset,
    # so an empty credential can never switch a source on.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    # --- storage and broker
    database_url: str = "sqlite:///tally.db"
    redis_url: str | None = None
    redis_namespace: str = "tally"
    # A worker silent this long is dead: its unacked messages go back to the queue.
    tally_heartbeat_timeout_ms: int = Field(default=60_000, ge=1000)

    # --- sources: the accounts of gateways to sync (worker/accounts.py; docs/accounts.md)
    tally_sources: str | None = None

    # --- sync
    sync_lookback_seconds: int = Field(default=3600, ge=0)
    sync_full_scan_interval_seconds: int = Field(default=86400, ge=60)
    sync_incremental_interval_seconds: int = Field(default=60, ge=1)
    # A record created later than now + this never moves a high-water mark (clock skew allowed).
    tally_future_skew_seconds: int = Field(default=86400, ge=0)

    # --- books: the currency reports are made in (Beancount's operating currency); values
    # are the gateways' own quotes, never converted by tally
    tally_reporting_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    # --- callbacks
    tally_public_url: str | None = None
    tally_callback_max_skew_seconds: int = Field(default=300, ge=1)
    tally_callback_host: str = "127.0.0.1"
    tally_callback_port: int = Field(default=8078, ge=0, le=65535)

    # --- reconciliation and alerts
    tally_alert_webhook_url: SecretStr | None = None
    tally_slack_webhook_url: SecretStr | None = None
    tally_alert_retry_min_backoff_ms: int = Field(default=1000, ge=1)
    tally_refund_grace_seconds: int = Field(default=86400, ge=0)
    tally_source_down_alert_seconds: int = Field(default=900, ge=1)
    tally_max_rejected_per_run: int = Field(default=10, ge=0)
    tally_reconcile_interval_seconds: int = Field(default=60, ge=1)  # the scheduler's reconcile
    # JSON objects, e.g. {"DOGE": 8} and {"USDT-TRC20": "0.01"}
    tally_currency_precision: str = "{}"
    tally_currency_tolerance: str = "{}"

    # --- process
    tally_worker_threads: int = Field(default=4, ge=1)
    tally_log_level: Literal["debug", "info", "warning", "error"] = "info"
    tally_log_format: Literal["auto", "json", "console"] = "auto"
    tally_metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no /metrics server
    tally_metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for scrapes and probes
    # /readyz fails once a source's last success is older than this (0: not checked).
    tally_ready_max_sync_age_seconds: int = Field(default=1800, ge=0)
    # SIGTERM: in-flight messages get this long to finish, then go back to the queue.
    tally_shutdown_grace_seconds: int = Field(default=30, ge=1)

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("sqlite", "postgres", "postgresql", "postgresql+psycopg"):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        _check_port(value)
        if scheme in ("postgres", "postgresql"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
                raise ValueError("must start with redis://, rediss:// or unix://")
            _check_port(value)
        return value

    @field_validator("tally_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("tally_alert_webhook_url", "tally_slack_webhook_url")
    @classmethod
    def _secret_http_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A webhook URL holds a token: checked here, never quoted in the error."""
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("tally_currency_precision")
    @classmethod
    def _places(cls, value: str) -> str:
        _currency_places(value)
        return value

    @field_validator("tally_currency_tolerance")
    @classmethod
    def _tolerances(cls, value: str) -> str:
        _currency_tolerances(value)
        return value

    _accounts: Accounts = PrivateAttr(default_factory=lambda: Accounts(REGISTRY))
    _rules: RulePolicy = PrivateAttr(default_factory=RulePolicy)

    # --- derived views

    @property
    def accounts(self) -> Accounts:
        """The gateways and the accounts ``load_settings`` read."""
        return self._accounts

    @property
    def sources(self) -> Mapping[str, SourceConfig]:
        """The configured sources by name, in order."""
        return self._accounts.sources

    @property
    def rule_policy(self) -> RulePolicy:
        """Which reconcile rules run, how loudly and with what tolerances (``TALLY_RULES``)."""
        return self._rules

    @property
    def inbound_policy(self) -> InboundPolicy:
        return InboundPolicy(max_skew_seconds=self.tally_callback_max_skew_seconds)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def precision_table(self) -> PrecisionTable:
        return PrecisionTable.with_overrides(
            _currency_places(self.tally_currency_precision),
            _currency_tolerances(self.tally_currency_tolerance),
        )

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction processor."""
        secrets = [self.tally_alert_webhook_url, self.tally_slack_webhook_url]
        values = [s.get_secret_value() for s in secrets if s is not None]
        values += self._accounts.secrets
        for url in (self.database_url, self.redis_url or ""):
            password = urlsplit(url).password
            if password:
                values.append(password)
        return [v for v in values if len(v) >= 4]


MAX_PLACES = 18
JSON_OBJECT = 'must be a JSON object such as {"DOGE": 8}'


def _check_port(url: str) -> None:
    try:
        _ = urlsplit(url).port  # parsed lazily: a bad one raises here
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None


def _json_object(text: str, example: str) -> dict[str, object]:
    try:
        parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"must be a JSON object such as {example}")
    return parsed


def _currency_places(text: str) -> dict[str, int]:
    """``TALLY_CURRENCY_PRECISION``: currency → decimal places, a whole number 0..18."""
    places = {}
    for currency, value in _json_object(text, '{"DOGE": 8}').items():
        number = _decimal(value)
        if number is None or number != number.to_integral_value() or not 0 <= number <= MAX_PLACES:
            raise ValueError(f"{currency}: places must be a whole number from 0 to {MAX_PLACES}")
        places[currency] = int(number)
    return places


def _currency_tolerances(text: str) -> dict[str, Decimal]:
    """``TALLY_CURRENCY_TOLERANCE``: currency → the largest difference ignored, 0 or more."""
    tolerances = {}
    for currency, value in _json_object(text, '{"USDT-TRC20": "0.01"}').items():
        number = _decimal(value)
        if number is None or number < 0:
            raise ValueError(f'{currency}: tolerance must be a number, 0 or more (e.g. "0.01")')
        tolerances[currency] = number
    return tolerances


def _decimal(value: object) -> Decimal | None:
    """A finite number given as a JSON number or a string (read exactly), else None."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, str)):
        return None
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else value
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


# The settings each group holds. A command validates only the groups it uses (its parser's
# ``uses`` default, see worker/app/cli.py), so a wrong Ebioro URL never stops `tally db status`.
# A field in no group is always validated. "sources" also reads every account's settings and
# "alerts" TALLY_RULES; other models (the console's, …) are read by the commands that use them.
GROUPS: dict[str, tuple[str, ...]] = {
    "logging": ("tally_log_level", "tally_log_format"),
    "ledger": ("database_url", "tally_currency_precision", "tally_currency_tolerance"),
    "broker": ("redis_url", "redis_namespace", "tally_heartbeat_timeout_ms"),
    "sources": ("tally_sources",),
    "sync": (
        "sync_lookback_seconds",
        "sync_full_scan_interval_seconds",
        "sync_incremental_interval_seconds",
        "tally_future_skew_seconds",
    ),
    "callbacks": (
        "tally_public_url",
        "tally_callback_max_skew_seconds",
        "tally_callback_host",
        "tally_callback_port",
    ),
    "alerts": (
        "tally_alert_webhook_url",
        "tally_slack_webhook_url",
        "tally_alert_retry_min_backoff_ms",
        "tally_refund_grace_seconds",
        "tally_source_down_alert_seconds",
        "tally_max_rejected_per_run",
        "tally_reconcile_interval_seconds",
    ),
    "process": (
        "tally_worker_threads",
        "tally_metrics_port",
        "tally_metrics_host",
        "tally_ready_max_sync_age_seconds",
        "tally_shutdown_grace_seconds",
    ),
}


# Settings models read apart from the core, each its own group: "module:loader", the loader
# validating the model and raising a one-line ConfigError. A command that names the group in
# its ``uses`` validates it at startup, and `tally doctor` checks every one; add yours here.
MODELS: dict[str, str] = {
    "console": "worker.console.settings:load_console_settings",
    "retention": "worker.retention.settings:load_retention",
    "exports": "worker.app.export_settings:load_export_settings",
}
EVERY_GROUP = (*GROUPS, *MODELS)


def _load_models(groups: Collection[str]) -> None:
    for group in sorted(set(groups) & set(MODELS)):
        module, loader = MODELS[group].split(":")
        getattr(importlib.import_module(module), loader)()


def _validated(field: str, groups: Collection[str]) -> bool:
    owners = [group for group, fields in GROUPS.items() if field in fields]
    return not owners or any(group in groups for group in owners)


def load_settings(
    *,
    gateways: Registry = REGISTRY,
    uses: Collection[str] | None = None,
    **overrides: object,
) -> Settings:
    """Read and validate the settings, or raise a one-line ``ConfigError`` naming the variable.

    ``uses`` names the groups (``GROUPS``, ``MODELS``) to validate, "logging" always; None:
    every core group (``EVERY_GROUP`` adds the models read apart).
    A field outside them that does not validate takes its default. ``overrides`` win over the
    environment, by variable name in lower case: a core setting (``database_url``) or an
    account's (``aurpay_page_size``, ``aurpay_eu_api_key``).
    """
    groups = set(GROUPS) if uses is None else {*uses, "logging"}
    core = {k: v for k, v in overrides.items() if k in Settings.model_fields}
    try:
        # The overrides are untyped by nature (any field's value); the model validates them.
        settings = Settings(**core)  # type: ignore[arg-type]
    except ValidationError as exc:
        failed = [error for error in exc.errors() if error["loc"]]
        used = [e for e in failed if _validated(str(e["loc"][0]), groups)]
        if used or not failed:
            raise config_error(exc, errors=used or None) from None
        unused = {str(e["loc"][0]) for e in failed}
        defaults = {name: Settings.model_fields[name].default for name in unused}
        settings = Settings(**{**core, **defaults})
    rules = {k: v for k, v in overrides.items() if k in RuleSettings.model_fields}
    if "alerts" in groups:
        settings._rules = load_policy(gateways, **rules)  # TALLY_RULES (worker/alerts/settings.py)
    accounts = {k: v for k, v in overrides.items() if k not in core and k not in rules}
    if "sources" in groups:
        settings._accounts = load_accounts(gateways, settings.tally_sources, accounts)
    else:
        settings._accounts = Accounts(gateways)
    _load_models(groups)
    return settings
