"""Replay caches: remember each accepted callback signature for a while and refuse it again.

Redis when the process has a Redis client (``REDIS_URL`` is set), in memory otherwise.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from worker.config import Settings


class ReplayCache(Protocol):
    def remember(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key``; True if it was not already recorded within its ttl."""
        ...

    def forget(self, key: str) -> None: ...


class MemoryReplayCache:
    """A thread-safe dict of key → expiry; expired keys are swept on each insert."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiries: dict[str, float] = {}
        self._lock = threading.Lock()

    def remember(self, key: str, ttl_seconds: float) -> bool:
        now = self._clock()
        with self._lock:
            self._expiries = {k: t for k, t in self._expiries.items() if t > now}
            if key in self._expiries:
                return False
            self._expiries[key] = now + ttl_seconds
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._expiries.pop(key, None)


class RedisReplayCache:
    """``SET NX EX`` on ``{namespace}:callback-replay:{sha256(key)}``."""

    def __init__(self, client: redis.Redis, *, namespace: str = "tally") -> None:
        self._client = client
        self._prefix = f"{namespace}:callback-replay:"

    def _redis_key(self, key: str) -> str:
        # Hashed: keys are signatures, which have no business sitting in Redis in clear.
        return self._prefix + hashlib.sha256(key.encode()).hexdigest()

    def remember(self, key: str, ttl_seconds: float) -> bool:
        millis = max(1, int(ttl_seconds * 1000))
        return bool(self._client.set(self._redis_key(key), b"1", nx=True, px=millis))

    def forget(self, key: str) -> None:
        self._client.delete(self._redis_key(key))


def replay_cache_for(settings: Settings, client: redis.Redis | None) -> ReplayCache:
    """On the process's Redis client (shared by every callbacks process), in memory without."""
    if client is not None:
        return RedisReplayCache(client, namespace=settings.redis_namespace)
    return MemoryReplayCache()
