"""Fault injection for the sandbox's four API endpoints: latency, 429, 500 and truncated bodies.

Deterministic: one ``random.Random`` seeded from the world's seed (separate from the data's),
drawn once per authenticated API request under a lock, so the same request sequence meets the
same faults. The rates are read from the world on every draw, so the admin API can change them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from worker.providers.aurpay.sandbox.model import FaultRates

RATE_LIMITED = "429"
SERVER_ERROR = "500"
TRUNCATED = "truncated"


class FaultInjector:
    """Decides, per request, whether and how to fail; thread-safe."""

    def __init__(
        self,
        seed: int,
        rates: Callable[[], FaultRates],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rng = random.Random(f"aurpay-sandbox-faults:{seed}")
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
