"""Frozen values the Ebioro sandbox is configured and described with.

``EbioroSandboxConfig`` says what world to build and how to serve it; ``FaultRates`` (shared
with the Aurpay sandbox) and ``WebhookTarget`` are what the admin API may change while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.config import SANDBOX_EBIORO_PUBLIC_KEY, SANDBOX_EBIORO_SECRET_KEY
from worker.providers.sandboxkit.faults import FaultRates

MAX_LIMIT = 100  # documented maximum of ``limit`` (ebioro-api.md §6)
DEFAULT_LIMIT = 20  # documented default


@dataclass(frozen=True)
class EbioroCredentials:
    """The key pair the sandbox accepts and signs webhooks with; never shown in a repr."""

    public_key: str = field(default=SANDBOX_EBIORO_PUBLIC_KEY, repr=False)
    secret_key: str = field(default=SANDBOX_EBIORO_SECRET_KEY, repr=False)


@dataclass(frozen=True)
class EbioroSandboxConfig:
    """Everything that decides the sandbox's data and behaviour; the same config, the same world."""

    seed: int = 1
    payments: int = 200
    mismatch_rate: float = 0.05
    dust_rate: float = 0.05
    latency_ms: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_invalid_record: float = 0.0
    retry_after_seconds: int = 1
    page_size_cap: int = MAX_LIMIT
    credentials: EbioroCredentials = field(default_factory=EbioroCredentials)
    max_skew_seconds: int = 300  # "±5 minute window" (§3.2)
    newest_first: bool = True
    webhook_url: str | None = None  # where payment changes are posted; the admin API may change it
    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks a free port

    def __post_init__(self) -> None:
        if self.payments < 0:
            raise ValueError("payments must be >= 0")
        if self.page_size_cap < 1:
            raise ValueError("page_size_cap must be >= 1")
        for name in ("mismatch_rate", "dust_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        self.fault_rates()  # validates the fault fields

    def fault_rates(self) -> FaultRates:
        return FaultRates(
            rate_429=self.rate_429,
            rate_500=self.rate_500,
            rate_truncated=self.rate_truncated,
            rate_invalid_record=self.rate_invalid_record,
            latency_ms=self.latency_ms,
            retry_after_seconds=self.retry_after_seconds,
        )


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
