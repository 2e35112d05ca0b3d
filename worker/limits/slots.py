"""A counting semaphore whose every slot is a lease that expires on its own.

dramatiq's ``ConcurrentRateLimiter`` keeps one shared counter whose expiry every acquire and
release refreshes: a process killed mid-request leaks its slot for as long as anyone else keeps
using the limiter, and enough kills stall every worker. Here each holder's slot is a member of
a sorted set scored by its own deadline (Redis), or an entry of a dict (one process), so a dead
holder's slot is reclaimed ``ttl`` seconds after it was taken, whatever the others do.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Protocol

import redis

# KEYS[1] = the set; ARGV = now_ms, ttl_ms, limit, member. Drop expired slots, then take one.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Slots(Protocol):
    def try_acquire(self) -> str | None:
        """A slot token, or None when every slot is held."""
        ...

    def release(self, token: str) -> None: ...


class RedisSlots:
    """Slots shared by every process using the same Redis key."""

    def __init__(self, client: redis.Redis, key: str, limit: int, ttl: float) -> None:
        self._client, self._key, self._limit = client, key, limit
        self._ttl_ms = max(1, int(ttl * 1000))
        self._acquire = client.register_script(_ACQUIRE)

    def try_acquire(self) -> str | None:
        token = uuid.uuid4().hex
        now_ms = int(time.time() * 1000)
        taken = self._acquire(keys=[self._key], args=[now_ms, self._ttl_ms, self._limit, token])
        return token if taken else None

    def release(self, token: str) -> None:
        self._client.zrem(self._key, token)


class LocalSlots:
    """The same semantics for one process (the embedded mode's threads)."""

    def __init__(self, limit: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._limit, self._ttl, self._clock = limit, ttl, clock
        self._held: dict[str, float] = {}
        self._lock = threading.Lock()

    def try_acquire(self) -> str | None:
        with self._lock:
            now = self._clock()
            self._held = {t: d for t, d in self._held.items() if d > now}
            if len(self._held) >= self._limit:
                return None
            token = uuid.uuid4().hex
            self._held[token] = now + self._ttl
            return token

    def release(self, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)


_LOCAL: weakref.WeakKeyDictionary[object, dict[str, LocalSlots]] = weakref.WeakKeyDictionary()
_LOCAL_LOCK = threading.Lock()


def local_slots(owner: object, key: str, limit: int, ttl: float) -> LocalSlots:
    """The in-process slots named ``key`` of ``owner`` (an in-memory backend): limiters built on
    the same backend share them, as they would share a Redis key."""
    with _LOCAL_LOCK:
        by_key = _LOCAL.setdefault(owner, {})
        if key not in by_key:
            by_key[key] = LocalSlots(limit, ttl)
        return by_key[key]
