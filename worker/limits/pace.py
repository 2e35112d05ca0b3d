"""A requests-per-second pace that holds in every sliding second, not only in calendar seconds.

GCRA (the generic cell rate algorithm, a token bucket): each admission moves a "theoretical
arrival time" (TAT) one interval (1 / rate) ahead, and a request is admitted once the TAT is at
most ``tolerance`` ahead of it. The tolerance lets a waiter that wakes a little late (a busy
machine) be made up for by the next one, so the rate is reached, and is as large as keeps every
window of one second, wherever it starts, within 5% of the rate: at most
``floor(1.05 * rate)`` admissions (fixed one-second buckets let up to twice the rate through
across a bucket edge). A refused request learns how long to wait.

Over Redis the state is one key per source, updated by a script (shared by every process and
host using the same key); in memory (one process) it is a float behind a lock.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Protocol

import redis

# KEYS[1] = the key; ARGV = now, interval, tolerance (s). "0" when admitted, else the wait (s).
_ADMIT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat - tolerance > now then
  return tostring(tat - tolerance - now)
end
tat = math.max(tat, now) + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return '0'
"""


class Pace(Protocol):
    def admit(self, now: float) -> float:
        """0 when a request may go at ``now`` (and count it), else the seconds to wait."""
        ...


def interval(per_second: int) -> float:
    if per_second < 1:
        raise ValueError("requests per second must be at least 1")
    return 1.0 / per_second


def tolerance(per_second: int) -> float:
    """How early a request may come: N admissions span at least (N - 1) / rate - tolerance,
    so a second holds at most ``floor(1.05 * rate)`` of them (none early below 20/s)."""
    # A microsecond less, so that float rounding never lets one more in at the window's edge.
    return max(0.0, ((105 * per_second) // 100) / per_second - 1.0 - 1e-6)


class RedisPace:
    """The pace shared by every process using the same Redis key."""

    def __init__(self, client: redis.Redis, key: str, per_second: int) -> None:
        self._key, self._interval = key, interval(per_second)
        self._tolerance = tolerance(per_second)
        self._admit = client.register_script(_ADMIT)

    def admit(self, now: float) -> float:
        args = [repr(now), repr(self._interval), repr(self._tolerance)]
        answer = self._admit(keys=[self._key], args=args)
        wait = float(answer.decode() if isinstance(answer, bytes) else answer)
        return wait if math.isfinite(wait) and wait > 0 else 0.0


class LocalPace:
    """The same for one process (the embedded mode's threads)."""

    def __init__(self, per_second: int) -> None:
        self._interval = interval(per_second)
        self._tolerance = tolerance(per_second)
        self._tat = 0.0
        self._lock = threading.Lock()

    def admit(self, now: float) -> float:
        with self._lock:
            if self._tat - self._tolerance > now:
                return self._tat - self._tolerance - now
            self._tat = max(self._tat, now) + self._interval
            return 0.0


_LOCAL: weakref.WeakKeyDictionary[object, dict[str, LocalPace]] = weakref.WeakKeyDictionary()
_LOCAL_LOCK = threading.Lock()


def local_pace(owner: object, key: str, per_second: int) -> LocalPace:
    """The in-process pace named ``key`` of ``owner`` (an in-memory backend): limiters built on
    the same backend share it, as they would share a Redis key."""
    with _LOCAL_LOCK:
        by_key = _LOCAL.setdefault(owner, {})
        if key not in by_key:
            by_key[key] = LocalPace(per_second)
        return by_key[key]
