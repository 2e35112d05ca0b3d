"""One Ebioro account's settings: ``EBIORO_<FIELD>``, or ``EBIORO_<ACCOUNT>_<FIELD>`` per account.

An account syncs when both keys are set. The base URL has no default on purpose, so nothing
ever reaches production by accident. Also the sandbox's default key pair.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from worker.gateways.contract import GatewaySettings

SANDBOX_PUBLIC_KEY = "pk_test_sandbox"
SANDBOX_SECRET_KEY = "sk_test_sandbox"
# Ebioro hosts (docs/gateways/ebioro.md (E-HOST-2)): production differs between the docs and the
# provider's code.
EBIORO_HOSTS = (
    "sandbox https://test-merchant.ebioro.com; production https://merchant-api.ebioro.com "
    "(provider code) or https://merchant.ebioro.com (docs)"
)


class EbioroSettings(GatewaySettings):
    """A key pair (pk_… public by design, sk_… secret) and the host it belongs to."""

    DESCRIPTIONS: ClassVar[dict[str, str]] = {
        "public_key": "Ebioro public key (pk_...); Ebioro syncs when both keys are set.",
        "secret_key": "Ebioro secret key (sk_...).",
        "base_url": "Ebioro host, required with the keys (no default: never prod by accident).",
        "page_size": "Records per Ebioro list page (1-100).",
        "timeout_seconds": "Timeout of one Ebioro HTTP request.",
        "max_concurrency": "Ebioro requests in flight at once, across all workers.",
        "requests_per_second": "Ebioro requests per second, across all workers.",
        "in_call_retries": "Quick retries of a failed Ebioro request, then the message retries.",
    }

    public_key: str | None = None  # public by design: shown in reprs
    secret_key: SecretStr | None = None
    base_url: str | None = None
    page_size: int = Field(default=100, ge=1, le=100)  # documented max of `limit`
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Limits are undocumented; the provider's WooCommerce reconciler paces GETs 300 ms apart.
    requests_per_second: int = Field(default=3, ge=1)
    in_call_retries: int = Field(default=3, ge=0, le=10)

    @field_validator("public_key", "secret_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("base_url")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL: {EBIORO_HOSTS}")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError("must be scheme://host, no path: the path is part of the signature")
        return f"{parts.scheme}://{parts.netloc}"

    def inconsistency(self) -> tuple[str, str] | None:
        public, secret = self.variable("public_key"), self.variable("secret_key")
        if bool(self.public_key) != (self.secret_key is not None):
            return secret, f"set both {public} and {secret}, or neither"
        if self.secret_key is not None and self.base_url is None:
            return self.variable(
                "base_url"
            ), f"required when the Ebioro keys are set: {EBIORO_HOSTS}"
        return None

    def missing_credentials(self) -> tuple[str, str] | None:
        if self.public_key and self.secret_key is not None:
            return None
        public, secret = self.variable("public_key"), self.variable("secret_key")
        return secret, f"required, with {public}"
