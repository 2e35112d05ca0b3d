"""Frozen values the Aurpay sandbox is configured and described with.

``SandboxConfig`` says what world to build and how to serve it; ``FaultRates`` and
``CallbackTarget`` are the parts the admin API may change while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.kit.config import SandboxSettings
from worker.gateways.aurpay.settings import (
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    SANDBOX_API_TOKEN,
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)


@dataclass(frozen=True)
class SandboxCredentials:
    """What the sandbox accepts and signs callbacks with; values never appear in a repr."""

    api_key: str = field(default=SANDBOX_API_KEY, repr=False)
    api_token: str = field(default=SANDBOX_API_TOKEN, repr=False)
    api_secret: str = field(default=SANDBOX_API_SECRET, repr=False)
    callback_token: str = field(default=SANDBOX_CALLBACK_TOKEN, repr=False)
    callback_secret: str = field(default=SANDBOX_CALLBACK_SECRET, repr=False)


@dataclass(frozen=True)
class SandboxConfig(SandboxSettings):
    """Everything that decides the sandbox's data and behaviour; the same config, the same world.
    The shared fields (seed, rates, faults, paging, host, port) are ``SandboxSettings``'."""

    orders: int = 200
    credentials: SandboxCredentials = field(default_factory=SandboxCredentials)
    sign_query: bool = True

    def __post_init__(self) -> None:
        if self.orders < 0:
            raise ValueError("orders must be >= 0")
        super().__post_init__()


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
