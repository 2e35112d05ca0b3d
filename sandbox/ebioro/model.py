"""Frozen values the Ebioro sandbox is configured and described with.

``EbioroSandboxConfig`` says what world to build and how to serve it; ``FaultRates`` (shared
with the Aurpay sandbox) and ``WebhookTarget`` are what the admin API may change while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.kit.config import SandboxSettings
from sandbox.kit.http import is_http_url
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY as SANDBOX_EBIORO_PUBLIC_KEY
from worker.gateways.ebioro.settings import SANDBOX_SECRET_KEY as SANDBOX_EBIORO_SECRET_KEY

DEFAULT_LIMIT = 20  # documented default


@dataclass(frozen=True)
class EbioroCredentials:
    """The key pair the sandbox accepts and signs webhooks with; never shown in a repr."""

    public_key: str = field(default=SANDBOX_EBIORO_PUBLIC_KEY, repr=False)
    secret_key: str = field(default=SANDBOX_EBIORO_SECRET_KEY, repr=False)


@dataclass(frozen=True)
class EbioroSandboxConfig(SandboxSettings):
    """Everything that decides the sandbox's data and behaviour; the same config, the same world.
    The shared fields (seed, rates, faults, ``page_size_cap`` = the documented max ``limit``
    100, ``max_skew_seconds`` = the documented ±300 s, host, port) are ``SandboxSettings``'."""

    payments: int = 200
    credentials: EbioroCredentials = field(default_factory=EbioroCredentials)
    webhook_url: str | None = None  # where payment changes are posted; the admin API may change it

    def __post_init__(self) -> None:
        if self.payments < 0:
            raise ValueError("payments must be >= 0")
        if self.webhook_url is not None and not is_http_url(self.webhook_url):
            raise ValueError("webhook_url must be an http(s) URL")
        super().__post_init__()


@dataclass(frozen=True)
class WebhookTarget:
    """Where payment changes are POSTed (Ebioro registers one ``webhookUrl`` per payment; the
    sandbox uses one for all)."""

    url: str


@dataclass(frozen=True)
class Delivery:
    """One webhook attempt: ``status`` is None when the receiver could not be reached."""

    payment_id: str
    event: str  # "transaction_created" | "transaction_updated"
    url: str
    status: int | None
    error: str | None = None
