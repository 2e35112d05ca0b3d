"""SourceLimiter holds both limits across limiter instances sharing a backend (Redis: processes)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from dramatiq.rate_limits import RateLimiterBackend
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from tests.integration.limits.test_pace import busiest_second
from worker.config import load_settings
from worker.errors import TransientError
from worker.limits.ratelimit import RateLimitWait, SourceLimiter, rate_limit_backend
from worker.redis_client import connect_redis

CONCURRENCY = 2
PER_SECOND = 6
CALLS = 12  # about two seconds of calls at PER_SECOND
PACE, PACED_CALLS = 10, 25  # about two and a half seconds


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backends(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[RateLimiterBackend]]]:
    """(namespace, two backends): one shared in-memory backend, or two Redis clients."""
    if request.param == "memory":
        shared = StubBackend()
        yield "memory", [shared, shared]
        return
    url, namespace = request.getfixturevalue("redis_namespace")
    clients = [redis.Redis.from_url(url), redis.Redis.from_url(url)]
    yield namespace, [RedisBackend(client=c) for c in clients]
    for client in clients:
        client.close()


def test_two_limiters_never_exceed_either_limit_together(
    backends: tuple[str, list[RateLimiterBackend]],
) -> None:
    namespace, (one, two) = backends
    limiters = [
        SourceLimiter(b, "aurpay", CONCURRENCY, PER_SECOND, namespace=namespace) for b in (one, two)
    ]
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    per_second: Counter[int] = Counter()
    remaining = iter(range(CALLS))

    def call(limiter: SourceLimiter) -> None:
        nonlocal in_flight, peak
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            with limiter.slot() as slot:
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                    per_second[int(slot.admitted_at)] += 1
                time.sleep(0.02)  # the "request"
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=call, args=(limiters[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(per_second.values()) == CALLS
    assert peak <= CONCURRENCY
    assert max(per_second.values()) <= PER_SECOND


def test_waiting_too_long_raises_a_transient_error_and_frees_nothing(
    backends: tuple[str, list[RateLimiterBackend]],
) -> None:
    namespace, (one, two) = backends
    holder = SourceLimiter(one, "aurpay", 1, 100, namespace=namespace)
    waiter = SourceLimiter(two, "aurpay", 1, 100, namespace=namespace, max_wait=0.1)
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.slot():
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    try:
        with pytest.raises(RateLimitWait) as raised, waiter.slot():
            pass
    finally:
        done.set()
        thread.join()

    assert isinstance(raised.value, TransientError)
    assert raised.value.source == "aurpay"
    assert raised.value.retry_after
    with waiter.slot():  # the holder's slot came back when it finished
        pass


def test_a_failing_request_gives_its_slot_back(
    backends: tuple[str, list[RateLimiterBackend]],
) -> None:
    namespace, (one, _) = backends
    limiter = SourceLimiter(one, "aurpay", 1, 100, namespace=namespace, max_wait=0.5)

    with pytest.raises(ValueError), limiter.slot():
        raise ValueError("request failed")
    with limiter.slot():
        pass


@pytest.mark.redis
def test_redis_keys_live_under_the_namespace(redis_namespace: tuple[str, str]) -> None:
    url, namespace = redis_namespace
    settings = load_settings(redis_url=url, redis_namespace=namespace)
    backend = rate_limit_backend(connect_redis(settings))
    assert isinstance(backend, RedisBackend)
    eu = load_settings(aurpay_eu_api_key="k-eu", tally_sources="aurpay-eu")
    account = eu.sources["aurpay-eu"]
    limiter = SourceLimiter.for_account(backend, "aurpay-eu", account.settings, namespace=namespace)

    with limiter.slot():
        keys = {k.decode() for k in backend.client.scan_iter(f"{namespace}:ratelimit:*")}
    backend.client.close()

    assert any(k.startswith(f"{namespace}:ratelimit:aurpay-eu:concurrent") for k in keys)
    assert any(k.startswith(f"{namespace}:ratelimit:aurpay-eu:second@") for k in keys)


def test_without_redis_the_backend_is_in_memory() -> None:
    assert isinstance(rate_limit_backend(connect_redis(load_settings())), StubBackend)


def test_no_sliding_second_holds_more_than_the_rate_and_the_rate_is_reached(
    backends: tuple[str, list[RateLimiterBackend]],
) -> None:
    namespace, pair = backends
    limiters = [SourceLimiter(b, "aurpay", 8, PACE, namespace=namespace) for b in pair]
    lock = threading.Lock()
    admitted: list[float] = []
    remaining = iter(range(PACED_CALLS))

    def call(limiter: SourceLimiter) -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            with limiter.slot() as slot, lock:
                admitted.append(slot.admitted_at)

    threads = [threading.Thread(target=call, args=(limiters[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(admitted) == PACED_CALLS
    # Within 5% (floor(1.05 * 10) = 10 here); fixed buckets allowed up to twice the rate.
    assert busiest_second(admitted) <= PACE
    span = max(admitted) - min(admitted)
    assert span >= (PACED_CALLS - 1) / PACE - 0.01  # never faster than the pace
    assert span <= (PACED_CALLS - 1) / PACE * 1.5  # and not far slower with waiters ready
