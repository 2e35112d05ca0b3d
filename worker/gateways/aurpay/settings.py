"""One Aurpay account's settings: ``AURPAY_<FIELD>``, or ``AURPAY_<ACCOUNT>_<FIELD>`` per account.

Also the sandbox's default credentials: the sandbox accepts them when the variables are unset,
and ``tally demo`` points the client at them, so one .env serves both.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from worker.gateways.contract import GatewaySettings

SANDBOX_API_KEY = "sandbox-api-key"
SANDBOX_API_TOKEN = "sandbox-api-token"
SANDBOX_API_SECRET = "sandbox-api-secret"
SANDBOX_CALLBACK_TOKEN = "SANDBOXCALLBACKTOKEN0000000000000000000000000"
SANDBOX_CALLBACK_SECRET = "sandbox-callback-secret"


class AurpaySettings(GatewaySettings):
    """API key (testing) or token + secret (signed requests); callbacks need their own pair."""

    DESCRIPTIONS: ClassVar[dict[str, str]] = {
        "base_url": "Aurpay API base URL (the sandbox's URL in tests and demos).",
        "api_key": "Aurpay API key (Aurpay: testing only); or set the token and secret.",
        "api_token": "Aurpay API token for signed requests (with the API secret).",
        "api_secret": "Aurpay API secret that signs requests.",
        "callback_token": "Token Aurpay sends with each callback; unset = callbacks refused.",
        "callback_secret": "Secret that signs Aurpay's callbacks.",
        "sign_query": "Whether the signed path includes the ?query (undocumented by Aurpay).",
        "naive_timezone": "IANA zone assumed for Aurpay timestamps that carry none.",
        "page_size": "Records per Aurpay list page (1-1000).",
        "timeout_seconds": "Timeout of one Aurpay HTTP request.",
        "max_concurrency": "Aurpay requests in flight at once, across all workers.",
        "requests_per_second": "Aurpay requests per second, across all workers.",
        "in_call_retries": "Quick retries of a failed Aurpay request, then the message retries.",
        "refund_recheck_max_age_days": "Full scans re-fetch refunds of the last N days; 0 = all.",
    }

    base_url: str = "https://dashboard.aurpay.net"
    api_key: SecretStr | None = None
    api_token: SecretStr | None = None
    api_secret: SecretStr | None = None
    callback_token: SecretStr | None = None
    callback_secret: SecretStr | None = None
    sign_query: bool = True  # whether {path} in the signature includes "?query"
    naive_timezone: str = "UTC"  # zone assumed for timestamps that carry none
    page_size: int = Field(default=100, ge=1, le=1000)
    timeout_seconds: float = Field(default=10.0, gt=0)
    in_call_retries: int = Field(default=3, ge=0, le=10)
    # Aurpay may correct a refund-info silently (the order unchanged), so full scans re-fetch it;
    # a window limits that to recent refunds, older ones only until they look final.
    refund_recheck_max_age_days: int = Field(default=0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("naive_timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. UTC)") from None
        return value

    def missing_credentials(self) -> tuple[str, str] | None:
        if self.api_key is not None or (self.api_token is not None and self.api_secret is not None):
            return None
        if self.api_token is not None:
            return self.variable("api_secret"), f"required with {self.variable('api_token')}"
        token, secret = self.variable("api_token"), self.variable("api_secret")
        return self.variable("api_key"), f"required (or {token} and {secret})"
