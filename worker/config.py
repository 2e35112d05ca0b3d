"""Settings: the only reader of the environment (and of an optional ``.env`` file).

Every setting is an environment variable with the field's name in upper case. A gateway's
settings are its own model, one instance per account (``worker.accounts``: ``TALLY_SOURCES``,
``AURPAY_API_KEY``, ``AURPAY_EU_API_KEY``, …). ``load_settings`` validates them all at startup
and turns any problem into a one-line ``ConfigError`` naming the variable. Secrets are
``SecretStr`` so they never show in a repr, a log line or a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.precision import PrecisionTable
from worker.accounts import Accounts, SourceConfig, config_error, load_accounts
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
        if scheme in ("postgres", "postgresql"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if scheme not in ("sqlite", "postgresql+psycopg"):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
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

    @field_validator("tally_currency_precision", "tally_currency_tolerance")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value, parse_float=Decimal)
        except ValueError:
            raise ValueError('must be a JSON object such as {"DOGE": 8}') from None
        if not isinstance(parsed, dict):
            raise ValueError('must be a JSON object such as {"DOGE": 8}')
        return value

    _accounts: Accounts = PrivateAttr(default_factory=lambda: Accounts(REGISTRY))

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
    def inbound_policy(self) -> InboundPolicy:
        return InboundPolicy(max_skew_seconds=self.tally_callback_max_skew_seconds)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def precision_table(self) -> PrecisionTable:
        places = {k: int(v) for k, v in json.loads(self.tally_currency_precision).items()}
        tolerances = {
            k: Decimal(str(v))
            for k, v in json.loads(self.tally_currency_tolerance, parse_float=Decimal).items()
        }
        return PrecisionTable.with_overrides(places, tolerances)

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


def load_settings(*, gateways: Registry = REGISTRY, **overrides: object) -> Settings:
    """Read and validate the settings, or raise a one-line ``ConfigError`` naming the variable.

    ``overrides`` win over the environment, by variable name in lower case: a core setting
    (``database_url``) or an account's (``aurpay_page_size``, ``aurpay_eu_api_key``).
    """
    core = {k: v for k, v in overrides.items() if k in Settings.model_fields}
    try:
        # The overrides are untyped by nature (any field's value); the model validates them.
        settings = Settings(**core)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise config_error(exc) from None
    accounts = {k: v for k, v in overrides.items() if k not in core}
    settings._accounts = load_accounts(gateways, settings.tally_sources, accounts)
    return settings
