"""The dramatiq composition root: choose the broker, install our middleware, run workers in-process.

Call ``setup_broker`` before any module that declares actors is imported: dramatiq otherwise
silently creates a default broker of its own at the first ``@dramatiq.actor``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name
from dramatiq.middleware import CurrentMessage, Middleware, default_middleware

from worker.config import Settings
from worker.logging import get_logger
from worker.metrics import ActorMetrics

log = get_logger(__name__)

_MESSAGE_KEYS = ("message_id", "actor", "queue")


class LogContext(Middleware):
    """Bind message_id, actor and queue into structlog's contextvars for each message."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, actor=message.actor_name, queue=message.queue_name
        )

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        structlog.contextvars.unbind_contextvars(*_MESSAGE_KEYS)

    after_skip_message = after_process_message


class ProcessResources(Middleware):
    """Create per-process resources (engine, HTTP client) at boot and close them at shutdown.

    Boot callbacks run once, in registration order; shutdown callbacks run once, in reverse
    order, and only after a boot. A failing shutdown callback is logged and the rest still run.
    """

    def __init__(self) -> None:
        self._boot: list[Callable[[], None]] = []
        self._shutdown: list[Callable[[], None]] = []
        self.booted = False

    def register_boot(self, fn: Callable[[], None]) -> None:
        self._boot.append(fn)

    def register_shutdown(self, fn: Callable[[], None]) -> None:
        self._shutdown.append(fn)

    def boot(self) -> None:
        """Run the boot callbacks (idempotent); unlike a dramatiq hook, a failure propagates."""
        if self.booted:
            return
        self.booted = True
        for fn in self._boot:
            fn()

    def shutdown(self) -> None:
        if not self.booted:
            return
        self.booted = False
        for fn in reversed(self._shutdown):
            try:
                fn()
            except Exception:  # one bad close must not leak the other resources
                log.exception("resource_shutdown_failed", callback=getattr(fn, "__name__", "?"))

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        self.boot()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # After, not before: dramatiq emits before_worker_shutdown while messages are still
        # being processed, and they need the engine and client until they finish.
        self.shutdown()


class InFlight(Middleware):
    """The messages being processed right now, so a shutdown can hand back unfinished ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: dict[str, Any] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self._messages[message.message_id] = message

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        with self._lock:
            self._messages.pop(message.message_id, None)

    after_skip_message = after_process_message

    def messages(self) -> list[Any]:
        with self._lock:
            return list(self._messages.values())


def _middleware() -> list[Middleware]:
    ours = [CurrentMessage(), LogContext(), ProcessResources(), InFlight(), ActorMetrics()]
    return [m() for m in default_middleware] + ours


def requeue_unfinished(broker: dramatiq.Broker) -> int:
    """Put the messages still in progress back on their queues (Redis only); how many.

    For a shutdown whose grace period ran out: without this they would wait for the heartbeat
    timeout and dramatiq's occasional maintenance. If one still finishes, it runs twice, which
    is harmless: every actor is idempotent and a page is one transaction.
    """
    found = [m for m in broker.middleware if isinstance(m, InFlight)]
    if not found or not isinstance(broker, RedisBroker):
        return 0
    by_queue: dict[str, list[str]] = {}
    for message in found[0].messages():
        by_queue.setdefault(message.queue_name, []).append(message.options["redis_message_id"])
    for queue, ids in by_queue.items():
        broker.do_requeue(queue, *ids)
    return sum(len(ids) for ids in by_queue.values())


def requeue_prefetched(worker: dramatiq.Worker) -> int:
    """Give back what each Redis consumer fetched but never handed to a worker thread; how many.

    A fetch moves messages into the worker's acknowledgement set at once; dramatiq's Redis
    consumer keeps the ones not yet handed out in a cache and does not give them back when it
    closes, so a clean shutdown left them to the heartbeat timeout and the next maintenance.
    """
    if not isinstance(worker.broker, RedisBroker):
        return 0
    count = 0
    for thread in worker.consumers.values():
        consumer: Any = getattr(thread, "consumer", None)
        cached = [data for data in getattr(consumer, "message_cache", None) or [] if data]
        if not cached:
            continue
        ids = [dramatiq.Message.decode(data).options["redis_message_id"] for data in cached]
        worker.broker.do_requeue(consumer.queue_name, *ids)
        consumer.message_cache = []
        count += len(ids)
    return count


def setup_broker(
    settings: Settings,
    client: redis.Redis | None,
    *,
    namespace: str | None = None,
    heartbeat_timeout_ms: int = 60_000,
) -> dramatiq.Broker:
    """Build the broker on the process's Redis client and make it dramatiq's global broker.

    With a client (``REDIS_URL`` set, ``worker.redis_client``): a durable ``RedisBroker`` whose
    keys live under the namespace, shared by every process. Without one: the embedded mode, an
    in-process ``StubBroker`` consumed by worker threads of the same process (see
    ``run_in_process``). Its messages are not durable; that is fine because a crash loses only
    queued work, which the next scheduled scan derives again, and every actor is idempotent.
    """
    broker: dramatiq.Broker
    if client is not None:
        broker = RedisBroker(
            client=client,
            namespace=namespace or settings.redis_namespace,
            heartbeat_timeout=heartbeat_timeout_ms,
            middleware=_middleware(),
        )
    else:
        # fail_fast=False: a dead-lettered message is logged by Retries, never re-raised by join.
        broker = StubBroker(middleware=_middleware(), fail_fast_default=False)
    dramatiq.set_broker(broker)
    return broker


def process_resources(broker: dramatiq.Broker | None = None) -> ProcessResources:
    """The ``ProcessResources`` middleware installed on ``broker`` (default: the global one)."""
    broker = broker or dramatiq.get_broker()
    for middleware in broker.middleware:
        if isinstance(middleware, ProcessResources):
            return middleware
    raise LookupError("the broker was not built by worker.broker.setup_broker")


def register_boot(fn: Callable[[], None], broker: dramatiq.Broker | None = None) -> None:
    process_resources(broker).register_boot(fn)


def register_shutdown(fn: Callable[[], None], broker: dramatiq.Broker | None = None) -> None:
    process_resources(broker).register_shutdown(fn)


def _queue_names(broker: dramatiq.Broker, queues: Iterable[str] | None) -> set[str]:
    return {q_name(q) for q in (broker.get_declared_queues() if queues is None else queues)}


def _pending(broker: dramatiq.Broker, queue: str) -> int:
    """Messages queued, delayed or in flight on ``queue``."""
    if isinstance(broker, StubBroker):
        # unfinished_tasks drops only when a message is acked or nacked, i.e. after processing.
        return sum(
            broker.queues[name].unfinished_tasks
            for name in (queue, dq_name(queue))
            if name in broker.queues
        )
    if isinstance(broker, RedisBroker):
        # The broker's qsize counts queued, delayed and unacked (in-flight) messages.
        return int(broker.do_qsize(queue))
    raise TypeError(f"cannot inspect queues of {type(broker).__name__}")


def in_flight(broker: dramatiq.Broker, queue: str) -> int:
    """Messages queued, delayed or being processed on ``queue``: 0 means none can still run."""
    return _pending(broker, q_name(queue))


def wait_idle(
    broker: dramatiq.Broker,
    queues: Iterable[str] | None = None,
    timeout: float = 60.0,
    interval: float = 0.02,
) -> None:
    """Wait until every queue is empty with nothing in flight, or raise ``TimeoutError``.

    Idle means two consecutive passes see nothing pending: an actor may enqueue a follow-up
    onto a queue the pass already looked at, just before its own message is acked.
    """
    names = sorted(_queue_names(broker, queues))
    deadline = time.monotonic() + timeout
    quiet_passes = 0
    while quiet_passes < 2:
        if any(_pending(broker, name) for name in names):
            quiet_passes = 0
            if time.monotonic() >= deadline:
                raise TimeoutError(f"queues {', '.join(names)} still busy after {timeout:g}s")
            time.sleep(interval)
        else:
            quiet_passes += 1


class InProcessWorker:
    """A dramatiq ``Worker`` running in this process, with the process resources booted."""

    def __init__(
        self, broker: dramatiq.Broker, threads: int, queues: set[str] | None, worker_timeout_ms: int
    ) -> None:
        self.broker = broker
        process_resources(broker).boot()
        broker.emit_after("process_boot")
        self._worker = dramatiq.Worker(
            broker, queues=queues, worker_threads=threads, worker_timeout=worker_timeout_ms
        )
        self._worker.start()

    def join(self, queues: Iterable[str] | None = None, timeout: float = 60.0) -> None:
        wait_idle(self.broker, queues, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the messages in progress finish for up to ``timeout`` seconds, hand back the
        rest (and every prefetched one) to the queue, then close the process resources."""
        self._worker.stop(timeout=int(timeout * 1000))
        requeue_prefetched(self._worker)
        requeued = requeue_unfinished(self.broker)
        if requeued:
            log.warning("shutdown_requeued_unfinished", messages=requeued, grace_seconds=timeout)


def run_in_process(
    broker: dramatiq.Broker,
    threads: int,
    queues: Iterable[str] | None = None,
    *,
    worker_timeout_ms: int = 1000,
) -> InProcessWorker:
    """Start ``threads`` worker threads consuming ``queues`` (default: every declared queue).

    ``worker_timeout_ms`` is how often idle threads wake up, which bounds how long ``stop`` takes.
    """
    queue_set = None if queues is None else set(queues)
    return InProcessWorker(broker, threads, queue_set, worker_timeout_ms)


def requeue_from_dead_workers(broker: dramatiq.Broker, queues: Iterable[str]) -> None:
    """Run dramatiq's Redis queue maintenance now: messages held by workers whose heartbeat is
    older than the timeout go back to their queues (a no-op for the in-process broker).

    dramatiq does this on 0.1% of its Redis commands per queue, so after a ``kill -9`` an idle
    deployment would wait some 15 minutes past the heartbeat timeout; the scheduler calls this
    every minute instead.
    """
    if not isinstance(broker, RedisBroker):
        return
    maintainer = RedisBroker(
        client=broker.client,
        namespace=broker.namespace,
        heartbeat_timeout=broker.heartbeat_timeout,
        maintenance_chance=MAINTENANCE_SCALE,
        middleware=[],
    )
    for queue in queues:
        maintainer.do_qsize(q_name(queue))
        maintainer.do_qsize(dq_name(queue))
