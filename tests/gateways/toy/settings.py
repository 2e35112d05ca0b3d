"""One toy account's settings: ``TOY_<FIELD>``, or ``TOY_<ACCOUNT>_<FIELD>`` per account."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from tests.gateways.toy.paging import MAX_PER_PAGE
from worker.gateways.contract import GatewaySettings


class ToySettings(GatewaySettings):
    """A bearer API key and the server it opens."""

    DESCRIPTIONS: ClassVar[dict[str, str]] = {
        "base_url": "Toy server URL (required with the key).",
        "api_key": "Toy API key; the toy source syncs when it is set.",
        "page_size": "Records per toy list page.",
        "timeout_seconds": "Timeout of one toy HTTP request.",
        "in_call_retries": "Quick retries of a failed toy request.",
    }

    base_url: str | None = None
    api_key: SecretStr | None = None
    page_size: int = Field(default=25, ge=1, le=MAX_PER_PAGE)
    timeout_seconds: float = Field(default=5.0, gt=0)
    in_call_retries: int = Field(default=2, ge=0, le=10)

    def inconsistency(self) -> tuple[str, str] | None:
        if self.api_key is not None and self.base_url is None:
            return self.variable("base_url"), f"required with {self.variable('api_key')}"
        return None

    def missing_credentials(self) -> tuple[str, str] | None:
        if self.api_key is None:
            return self.variable("api_key"), "required"
        return None
