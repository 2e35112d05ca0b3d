"""Replay caches: remember each accepted callback signature for a while and refuse it again.

Redis when the process has a Redis client (``REDIS_URL`` is set), in memory otherwise (bounded by
``TALLY_REPLAY_CACHE_MAX_ENTRIES``); either way an entry lives at most
``TALLY_RETENTION_REPLAY_SECONDS``.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from worker.config import Settings
from worker.errors import ConfigError
from worker.retention.settings import load_retention


class ReplayCache(Protocol):
    def remember(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key``; True if it was not already recorded within its ttl."""
        ...

    def forget(self, key: str) -> None: ...


class MemoryReplayCache:
    """A thread-safe, bounded map of key → expiry.

    A heap of expiries sweeps expired keys in O(log n) per insert (never a rebuild of the
    map); beyond ``max_entries`` the keys nearest their expiry go first, so memory is bounded
    whatever the callback rate.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_entries: int = 100_000
    ) -> None:
        self._clock = clock
        self._max = max_entries
        self._expiries: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # may hold stale pairs (forgotten keys)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiries)

    def remember(self, key: str, ttl_seconds: float) -> bool:
        now = self._clock()
        with self._lock:
            self._drop_while(lambda expiry: expiry <= now)
            if key in self._expiries:
                return False
            expiry = now + ttl_seconds
            self._expiries[key] = expiry
            heapq.heappush(self._heap, (expiry, key))
            self._drop_while(lambda _expiry: len(self._expiries) > self._max)
            if len(self._heap) > 2 * self._max:  # stale pairs of forgotten keys
                self._heap = [(t, k) for k, t in self._expiries.items()]
                heapq.heapify(self._heap)
            return True

    def _drop_while(self, condition: Callable[[float], bool]) -> None:
        while self._heap and condition(self._heap[0][0]):
            expiry, key = heapq.heappop(self._heap)
            if self._expiries.get(key) == expiry:
                del self._expiries[key]

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


class CappedReplayCache:
    """Remembers each key at most ``max_seconds`` (``TALLY_RETENTION_REPLAY_SECONDS``)."""

    def __init__(self, inner: ReplayCache, max_seconds: float) -> None:
        self._inner = inner
        self._max = max_seconds

    def remember(self, key: str, ttl_seconds: float) -> bool:
        return self._inner.remember(key, min(ttl_seconds, self._max))

    def forget(self, key: str) -> None:
        self._inner.forget(key)


def replay_cache_for(settings: Settings, client: redis.Redis | None) -> ReplayCache:
    """On the process's Redis client (shared by every callbacks process), in memory without;
    entries kept at most the replay retention, but never less than a signature stays valid."""
    retention = load_retention()
    window = 2 * settings.tally_callback_max_skew_seconds  # a signed timestamp's validity
    if retention.tally_retention_replay_seconds < window:
        raise ConfigError(
            "invalid setting TALLY_RETENTION_REPLAY_SECONDS: must be at least twice "
            f"TALLY_CALLBACK_MAX_SKEW_SECONDS ({window} s), or a replay could be accepted"
        )
    inner: ReplayCache
    if client is not None:
        inner = RedisReplayCache(client, namespace=settings.redis_namespace)
    else:
        inner = MemoryReplayCache(max_entries=retention.tally_replay_cache_max_entries)
    return CappedReplayCache(inner, retention.tally_retention_replay_seconds)
