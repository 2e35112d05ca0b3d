"""The composition root: embedded and Redis brokers, our middleware, in-process workers, idling."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from worker.broker import (
    LogContext,
    ProcessResources,
    register_boot,
    register_shutdown,
    run_in_process,
    setup_broker,
    wait_idle,
)
from worker.config import load_settings
from worker.redis_client import connect_redis


@pytest.fixture(autouse=True)
def _restore_global_broker() -> Iterator[None]:
    previous = dramatiq.broker.global_broker
    yield
    dramatiq.set_broker(previous)  # type: ignore[arg-type]


def _queue(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_without_redis_the_embedded_broker_is_global_with_our_middleware() -> None:
    broker = setup_broker(load_settings(), None)

    assert isinstance(broker, StubBroker)
    assert dramatiq.get_broker() is broker
    kinds = {type(m) for m in broker.middleware}
    assert {Retries, CurrentMessage, LogContext, ProcessResources} <= kinds


def test_in_process_worker_runs_messages_and_their_follow_ups_with_log_context() -> None:
    broker = setup_broker(load_settings(), None)
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def second(n: int) -> None:
        with lock:
            seen.append({"n": n, **structlog.contextvars.get_contextvars()})

    def first(n: int) -> None:
        with lock:
            seen.append({"n": n, **structlog.contextvars.get_contextvars()})
        follow_up.send(n)  # enqueued before this message is acked: join must still wait for it

    follow_up = dramatiq.actor(second, broker=broker, queue_name=_queue("second"))
    start = dramatiq.actor(first, broker=broker, queue_name=_queue("first"))
    worker = run_in_process(broker, threads=2, worker_timeout_ms=100)
    try:
        sent = {start.send(n).message_id for n in range(5)}
        worker.join(timeout=30)
    finally:
        worker.stop()

    firsts = [s for s in seen if s["actor"] == "first"]
    seconds = [s for s in seen if s["actor"] == "second"]
    assert {s["message_id"] for s in firsts} == sent
    assert {s["queue"] for s in firsts} == {start.queue_name}
    assert sorted(s["n"] for s in seconds) == [0, 1, 2, 3, 4]
    assert {s["queue"] for s in seconds} == {follow_up.queue_name}
    assert not {s["message_id"] for s in seconds} & sent


def test_process_resources_boot_before_work_and_close_after_it_in_reverse() -> None:
    broker = setup_broker(load_settings(), None)
    events: list[str] = []
    register_boot(lambda: events.append("boot engine"))
    register_boot(lambda: events.append("boot client"))
    register_shutdown(lambda: events.append("close engine"))
    register_shutdown(lambda: events.append("close client"))
    actor = dramatiq.actor(
        lambda: events.append("work"), actor_name="work", broker=broker, queue_name=_queue("r")
    )

    worker = run_in_process(broker, threads=1, worker_timeout_ms=100)
    actor.send()
    worker.join(timeout=30)
    worker.stop()

    assert events == ["boot engine", "boot client", "work", "close client", "close engine"]


def test_a_failing_boot_callback_stops_the_worker_from_starting() -> None:
    broker = setup_broker(load_settings(), None)

    def broken() -> None:
        raise RuntimeError("database unreachable")

    register_boot(broken)
    with pytest.raises(RuntimeError, match="database unreachable"):
        run_in_process(broker, threads=1)


def test_wait_idle_times_out_while_messages_are_still_queued() -> None:
    broker = setup_broker(load_settings(), None)
    actor = dramatiq.actor(lambda: None, actor_name="idle", broker=broker, queue_name=_queue("i"))
    actor.send()  # no worker consumes it

    with pytest.raises(TimeoutError, match=actor.queue_name):
        wait_idle(broker, [actor.queue_name], timeout=0.2)


@pytest.mark.redis
def test_with_redis_the_broker_is_durable_and_namespaced(redis_namespace: tuple[str, str]) -> None:
    url, namespace = redis_namespace
    settings = load_settings(redis_url=url)
    broker = setup_broker(settings, connect_redis(settings), namespace=namespace)
    done: list[int] = []
    actor = dramatiq.actor(done.append, actor_name="collect", broker=broker, queue_name="sync")

    assert isinstance(broker, RedisBroker)
    assert broker.namespace == namespace
    worker = run_in_process(broker, threads=2, worker_timeout_ms=100)
    try:
        for n in range(3):
            actor.send(n)
        wait_idle(broker, ["sync"], timeout=30)
    finally:
        worker.stop()
        broker.close()

    assert sorted(done) == [0, 1, 2]
    client = redis.Redis.from_url(url)
    try:
        assert client.zscore(f"{namespace}:__heartbeats__", broker.broker_id) is not None
    finally:
        client.close()
