"""One Redis connection pool per process: a process running the scheduler, the callback server
and the ops server (broker, rate limits, replay cache, lease, readiness) builds exactly one."""

from __future__ import annotations

import socket
import threading
from typing import Any

import dramatiq
import httpx
import pytest
import redis

from tests.helpers.waiting import wait_until
from worker import runtime
from worker.app.commands.processes import serve
from worker.config import load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.redis
def test_a_process_shares_one_redis_pool(
    redis_namespace: tuple[str, str], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, namespace = redis_namespace
    probe = redis.Redis.from_url(url)  # the test's own, built before the count starts
    pools: list[redis.ConnectionPool] = []
    build_pool = redis.ConnectionPool.__init__

    def counted(self: redis.ConnectionPool, *args: Any, **kwargs: Any) -> None:
        pools.append(self)
        build_pool(self, *args, **kwargs)

    monkeypatch.setattr(redis.ConnectionPool, "__init__", counted)
    ops_port = free_port()
    settings = load_settings(
        database_url=sqlite_url,
        redis_url=url,
        redis_namespace=namespace,
        aurpay_api_key="key-0b6d8e2c4a",
        aurpay_base_url="http://127.0.0.1:9",  # never called: no worker runs here
        tally_metrics_port=ops_port,
    )
    stop = threading.Event()
    process = threading.Thread(
        target=serve,
        args=(settings,),
        kwargs={
            "scheduler": True,
            "callbacks": True,
            "host": "127.0.0.1",
            "port": free_port(),
            "stop": stop,
        },
    )
    process.start()
    try:
        wait_until(lambda: probe.exists(f"{namespace}:lease:scheduler") == 1)
        readyz = httpx.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=10).json()
        assert readyz["checks"]["broker"] == {"ok": True, "detail": "broker redis reachable"}
        (pool,) = pools
        assert runtime.current().redis_client is not None
        assert runtime.current().redis_client.connection_pool is pool
        assert dramatiq.get_broker().client.connection_pool is pool  # type: ignore[attr-defined]
    finally:
        stop.set()
        process.join(timeout=30)
        probe.close()
    assert not process.is_alive()
    assert len(pools) == 1
