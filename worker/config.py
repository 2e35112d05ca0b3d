"""Settings: the only reader of the environment (and of an optional ``.env`` file).

Every setting is an environment variable with the field's name in upper case. ``load_settings``
validates them all at startup and turns any problem into a one-line ``ConfigError`` naming the
variable. Secrets are ``SecretStr`` so they never show in a repr, a log line or a traceback.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.precision import PrecisionTable
from worker.errors import ConfigError

# Sandbox defaults: the sandbox accepts these when the variables are unset, and `tally demo`
# points the client at them, so one .env serves both the sandbox and the client.
SANDBOX_API_KEY = "sandbox-api-key"
SANDBOX_API_TOKEN = "sandbox-api-token"
SANDBOX_API_SECRET = "sandbox-api-secret"
SANDBOX_CALLBACK_TOKEN = "SANDBOXCALLBACKTOKEN0000000000000000000000000"
SANDBOX_CALLBACK_SECRET = "sandbox-callback-secret"
SANDBOX_EBIORO_PUBLIC_KEY = "pk_test_sandbox"
SANDBOX_EBIORO_SECRET_KEY = "sk_test_sandbox"
# Ebioro hosts (ebioro-api.md §2): production differs between the docs and the provider's code.
EBIORO_HOSTS = (
    "sandbox https://test-merchant.ebioro.com; production https://merchant-api.ebioro.com "
    "(provider code) or https://merchant.ebioro.com (docs)"
)


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

    # --- Aurpay
    aurpay_base_url: str = "https://dashboard.aurpay.net"
    aurpay_api_key: SecretStr | None = None
    aurpay_api_token: SecretStr | None = None
    aurpay_api_secret: SecretStr | None = None
    aurpay_callback_token: SecretStr | None = None
    aurpay_callback_secret: SecretStr | None = None
    aurpay_sign_query: bool = True  # whether {path} in the signature includes "?query"
    aurpay_naive_timezone: str = "UTC"  # zone assumed for timestamps that carry none
    aurpay_page_size: int = Field(default=100, ge=1, le=1000)
    aurpay_timeout_seconds: float = Field(default=10.0, gt=0)
    aurpay_max_concurrency: int = Field(default=4, ge=1)
    aurpay_requests_per_second: int = Field(default=20, ge=1)
    aurpay_in_call_retries: int = Field(default=3, ge=0, le=10)

    # --- Ebioro: enabled when both keys are set. The base URL has no default on purpose, so
    # nothing ever reaches production by accident. Keys before URL: the validators read them.
    ebioro_public_key: str | None = None  # pk_… / pk_test_…: public by design, shown in reprs
    ebioro_secret_key: SecretStr | None = Field(default=None, validate_default=True)
    ebioro_base_url: str | None = Field(default=None, validate_default=True)
    ebioro_page_size: int = Field(default=100, ge=1, le=100)  # documented max of `limit`
    ebioro_timeout_seconds: float = Field(default=10.0, gt=0)
    ebioro_max_concurrency: int = Field(default=4, ge=1)
    # Limits are undocumented; the provider's WooCommerce reconciler paces GETs 300 ms apart.
    ebioro_requests_per_second: int = Field(default=3, ge=1)
    ebioro_in_call_retries: int = Field(default=3, ge=0, le=10)

    # --- sync
    sync_lookback_seconds: int = Field(default=3600, ge=0)
    sync_full_scan_interval_seconds: int = Field(default=86400, ge=60)
    sync_incremental_interval_seconds: int = Field(default=60, ge=1)

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

    @field_validator("aurpay_base_url", "tally_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("ebioro_secret_key")
    @classmethod
    def _ebioro_key_pair(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        public = bool(info.data.get("ebioro_public_key"))
        secret = value is not None and bool(value.get_secret_value())
        if public != secret:
            raise ValueError("set both EBIORO_PUBLIC_KEY and EBIORO_SECRET_KEY, or neither")
        return value if secret else None

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

    @field_validator("ebioro_base_url")
    @classmethod
    def _ebioro_base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            if info.data.get("ebioro_secret_key") is not None:
                raise ValueError(f"required when the Ebioro keys are set: {EBIORO_HOSTS}")
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL: {EBIORO_HOSTS}")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError("must be scheme://host, no path: the path is part of the signature")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("aurpay_naive_timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. UTC)") from None
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

    # --- derived views

    @property
    def aurpay_enabled(self) -> bool:
        return self.aurpay_api_key is not None or (
            self.aurpay_api_token is not None and self.aurpay_api_secret is not None
        )

    @property
    def ebioro_enabled(self) -> bool:
        return bool(self.ebioro_public_key) and self.ebioro_secret_key is not None

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
        secrets = [
            self.aurpay_api_key,
            self.aurpay_api_token,
            self.aurpay_api_secret,
            self.aurpay_callback_token,
            self.aurpay_callback_secret,
            self.ebioro_secret_key,
            self.tally_alert_webhook_url,
            self.tally_slack_webhook_url,
        ]
        values = [s.get_secret_value() for s in secrets if s is not None]
        for url in (self.database_url, self.redis_url or ""):
            password = urlsplit(url).password
            if password:
                values.append(password)
        return [v for v in values if len(v) >= 4]


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, or raise a one-line ``ConfigError`` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        reason = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {name}: {reason}") from None
