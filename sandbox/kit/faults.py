"""Fault injection for a sandbox's API endpoints: latency, 429, 500 and truncated bodies.

Deterministic: one ``random.Random`` seeded from the provider's name and the world's seed
(separate from the data's), drawn once per authenticated API request under a lock, so the same
request sequence meets the same faults. The rates are read on every draw, so the admin API can
change them while the sandbox runs.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RATE_LIMITED = "429"
SERVER_ERROR = "500"
TRUNCATED = "truncated"


@dataclass(frozen=True)
class FaultRates:
    """Transport faults of the API endpoints, and the share of junk list records."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_invalid_record: float = 0.0
    latency_ms: int = 0
    retry_after_seconds: int = 1

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "rate_truncated", "rate_invalid_record"):
            value = getattr(self, name)
            if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("latency_ms", "retry_after_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_429": self.rate_429,
            "rate_500": self.rate_500,
            "rate_truncated": self.rate_truncated,
            "rate_invalid_record": self.rate_invalid_record,
            "latency_ms": self.latency_ms,
            "retry_after_seconds": self.retry_after_seconds,
        }


@dataclass(frozen=True)
class InvalidRecord:
    """A junk list item planted on purpose: which list, why it is invalid, and the item itself."""

    endpoint: str  # the list it was planted in, e.g. "orders" or "payments"
    reason: str
    record: dict[str, Any]


class FaultInjector:
    """Decides, per request, whether and how to fail; thread-safe."""

    def __init__(
        self,
        provider: str,
        seed: int,
        rates: Callable[[], FaultRates],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rng = random.Random(f"{provider}-sandbox-faults:{seed}")
        self._lock = threading.Lock()
        self._rates = rates
        self._sleep = sleep

    def delay(self) -> None:
        latency_ms = self._rates().latency_ms
        if latency_ms:
            self._sleep(latency_ms / 1000)

    def draw(self) -> str | None:
        """``RATE_LIMITED``, ``SERVER_ERROR``, ``TRUNCATED`` or None (answer normally)."""
        rates = self._rates()
        with self._lock:
            roll = self._rng.random()
        for fault, rate in (
            (RATE_LIMITED, rates.rate_429),
            (SERVER_ERROR, rates.rate_500),
            (TRUNCATED, rates.rate_truncated),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return None
