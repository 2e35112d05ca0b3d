"""The process's one Redis client (one connection pool), or None in the embedded mode.

The composition root (``worker.runtime.build_runtime``) calls ``connect_redis`` once and hands the
client to everything that talks to Redis: the broker, the rate limits, the callback replay
cache, the scheduler's lease and readiness. Nothing else builds a Redis client, so a process
holds one pool however many pieces it runs (tests/integration/test_redis_pool.py counts them).
"""

from __future__ import annotations

import redis

from worker.config import Settings


def connect_redis(settings: Settings, *, timeout: float | None = None) -> redis.Redis | None:
    """A client on ``REDIS_URL`` (None without it). ``timeout`` bounds connecting and each
    command (None: wait as long as it takes, what the broker and the limits want)."""
    if not settings.redis_url:
        return None
    return redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
