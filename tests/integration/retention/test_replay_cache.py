"""Callback replay entries: bounded in memory, kept at most the replay retention anywhere."""

from __future__ import annotations

import time

import pytest
import redis

from worker.config import load_settings
from worker.errors import ConfigError
from worker.inbound.replay import MemoryReplayCache, replay_cache_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_cache_refuses_a_replay_then_forgets_it_at_expiry() -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock, max_entries=100)
    assert cache.remember("sig", 10)
    assert not cache.remember("sig", 10)
    clock.now = 10.5
    assert cache.remember("sig", 10)


def test_memory_cache_is_bounded_and_sweeps_expired_entries() -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock, max_entries=1000)
    for n in range(5000):  # a flood of long-lived keys: the size never passes the bound
        cache.remember(f"long-{n}", 3600)
        assert len(cache) <= 1000
    assert not cache.remember("long-4999", 3600)  # the newest are the ones kept
    for n in range(500):
        cache.remember(f"short-{n}", 1)
    clock.now = 3601
    cache.remember("later", 1)
    assert len(cache) == 1  # everything expired went on one insert
    for n in range(3000):  # forgotten keys leave no stale pairs growing without bound
        cache.remember(f"f-{n}", 60)
        cache.forget(f"f-{n}")
    assert len(cache._heap) <= 2 * 1000 + 1


def test_an_insert_costs_the_same_with_a_full_cache() -> None:
    cache = MemoryReplayCache(max_entries=200_000)
    for n in range(100_000):
        cache.remember(f"k{n}", 3600)
    started = time.perf_counter()
    for n in range(2000):
        cache.remember(f"x{n}", 3600)
    # a rebuild of the map per insert would take seconds here
    assert time.perf_counter() - started < 0.5


def test_redis_entries_live_at_most_the_replay_retention(redis_namespace: tuple[str, str]) -> None:
    url, namespace = redis_namespace
    client = redis.Redis.from_url(url)
    settings = load_settings(redis_url=url, redis_namespace=namespace)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALLY_RETENTION_REPLAY_SECONDS", "3600")
        cache = replay_cache_for(settings, client)
    assert cache.remember("webhook-body", 7 * 86400)
    (key,) = client.scan_iter(f"{namespace}:callback-replay:*")
    assert 3500 < client.pttl(key) / 1000 <= 3600
    client.close()


def test_a_replay_retention_shorter_than_the_signature_window_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TALLY_RETENTION_REPLAY_SECONDS", "300")
    with pytest.raises(ConfigError, match=r"^invalid setting TALLY_RETENTION_REPLAY_SECONDS"):
        replay_cache_for(load_settings(tally_callback_max_skew_seconds=300), None)
