"""Frozen values the Aurpay sandbox is configured and described with.

``SandboxConfig`` says what world to build and how to serve it; ``FaultRates`` and
``CallbackTarget`` are the parts the admin API may change while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.config import (
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    SANDBOX_API_TOKEN,
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)
from worker.providers.sandboxkit.faults import FaultRates


@dataclass(frozen=True)
class SandboxCredentials:
    """What the sandbox accepts and signs callbacks with; values never appear in a repr."""

    api_key: str = field(default=SANDBOX_API_KEY, repr=False)
    api_token: str = field(default=SANDBOX_API_TOKEN, repr=False)
    api_secret: str = field(default=SANDBOX_API_SECRET, repr=False)
    callback_token: str = field(default=SANDBOX_CALLBACK_TOKEN, repr=False)
    callback_secret: str = field(default=SANDBOX_CALLBACK_SECRET, repr=False)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that decides the sandbox's data and behaviour; the same config, the same world."""

    seed: int = 1
    orders: int = 200
    mismatch_rate: float = 0.05
    dust_rate: float = 0.05
    latency_ms: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_invalid_record: float = 0.0
    retry_after_seconds: int = 1
    page_size_cap: int = 100
    credentials: SandboxCredentials = field(default_factory=SandboxCredentials)
    max_skew_seconds: int = 300
    sign_query: bool = True
    newest_first: bool = True
    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks a free port

    def __post_init__(self) -> None:
        if self.orders < 0:
            raise ValueError("orders must be >= 0")
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
class CallbackTarget:
    """Where order changes are called back: GET (Aurpay's default) or POST with the order body."""

    url: str
    method: str = "GET"


@dataclass(frozen=True)
class Delivery:
    """One callback attempt: ``status`` is None when the receiver could not be reached."""

    order_id: str
    method: str
    url: str
    status: int | None
    error: str | None = None
