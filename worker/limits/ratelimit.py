"""Per-source request limits shared by every worker: concurrent requests and requests per second.

The per-second rate is a pace (``worker.limits.pace``, GCRA: admissions at least 1 / rate apart,
so it holds in every sliding second); concurrency uses ``worker.limits.slots`` (leases that expire
one by one). Over Redis they hold across processes and hosts; over the
in-memory backend (embedded mode, one process) they hold across the process's threads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from dramatiq.rate_limits import RateLimiterBackend
from dramatiq.rate_limits.backends import StubBackend
from dramatiq.rate_limits.backends.redis import RedisBackend

from worker.errors import TransientError
from worker.gateways.contract import GatewaySettings
from worker.limits.pace import Pace, RedisPace, local_pace
from worker.limits.slots import RedisSlots, Slots, local_slots


class RateLimitWait(TransientError):
    """No request slot freed up within the allowed wait; retry the whole call later."""


@dataclass(frozen=True)
class Slot:
    """Permission for one request; ``admitted_at`` is the time the pace admitted it."""

    source: str
    admitted_at: float


def rate_limit_backend(client: redis.Redis | None) -> RateLimiterBackend:
    """On the process's Redis client (limits shared by all processes), in-memory without one."""
    if client is not None:
        return RedisBackend(client=client)
    return StubBackend()


class SourceLimiter:
    """Blocks each request of one source until both its limits allow it.

    ``slot()`` takes a concurrency slot first (given back on failure) and then the pace's next
    admission (spent even if the request fails, as a server would count it). Refused by the
    pace, it sleeps until the next admission is due (plus a little jitter); refused a slot, it
    sleeps briefly with jitter. It gives up after ``max_wait`` seconds with ``RateLimitWait``,
    so a stuck peer makes the caller retry later rather than hang.

    A process killed mid-request holds its concurrency slot for ``slot_ttl`` seconds at most
    (each slot is its own lease, ``worker.limits.slots``); keep ``slot_ttl`` above the longest
    request.
    """

    def __init__(
        self,
        backend: RateLimiterBackend,
        source: str,
        max_concurrency: int,
        per_second: int,
        *,
        namespace: str = "tally",
        max_wait: float = 30.0,
        slot_ttl: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        prefix = f"{namespace}:ratelimit:{source}"
        self.source = source
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._concurrency: Slots = (
            RedisSlots(backend.client, f"{prefix}:concurrent", max_concurrency, slot_ttl)
            if isinstance(backend, RedisBackend)
            else local_slots(backend, f"{prefix}:concurrent", max_concurrency, slot_ttl)
        )
        # ":second@" kept from the one-second buckets this replaced: the same key family.
        pace_key = f"{prefix}:second@gcra"
        self._per_second: Pace = (
            RedisPace(backend.client, pace_key, per_second)
            if isinstance(backend, RedisBackend)
            else local_pace(backend, pace_key, per_second)
        )

    @classmethod
    def for_account(
        cls, backend: RateLimiterBackend, source: str, account: GatewaySettings, *, namespace: str
    ) -> SourceLimiter:
        """The limiter of source ``source``, paced by its account's settings."""
        return cls(
            backend,
            source,
            account.max_concurrency,
            account.requests_per_second,
            namespace=namespace,
        )

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """Hold one request slot for the duration of the ``with`` block."""
        deadline = time.monotonic() + self.max_wait
        while True:
            now = self._clock()
            token = self._concurrency.try_acquire()
            due = 0.0
            if token is not None:
                due = self._per_second.admit(now)
                if due <= 0:
                    break
                self._concurrency.release(token)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RateLimitWait(
                    f"no {self.source} request slot within {self.max_wait:g}s",
                    source=self.source,
                    retry_after=1.0,
                )
            # Jitter spreads the waiters so they do not all retry on the same millisecond.
            pause = due + random.uniform(0.0, 0.005) if due else random.uniform(0.01, 0.05)
            self._sleep(min(remaining, pause))
        try:
            yield Slot(self.source, now)
        finally:
            self._concurrency.release(token)
