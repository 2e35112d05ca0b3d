"""The callbacks edge under load, as a real ``tally callbacks`` process on Redis (loopback only):
2,000 signed Ebioro webhooks from 500 concurrent clients all answered 200 and enqueued once,
while hostile requests get JSON 4xx answers; then SIGTERM drains and exits cleanly.

The stdlib server this replaced listened with a backlog of 5: at 500 concurrent clients 4–8%
of requests timed out. The figures are printed (``pytest -s``) and kept in
``tests/artifacts/load/callback-load.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.processes import TallyProcess
from worker.gateways.ebioro.auth import sign_webhook

pytestmark = pytest.mark.redis

CLIENTS = 500
REQUESTS = 2000
TIMEOUT_SECONDS = 10.0
SECRET = "sk_test_load_secret"
PATH = "/callbacks/ebioro"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "load"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _request(port: int, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """One request on its own connection (a gateway's delivery): (status, parsed JSON body).

    The answer is read while the body is still being sent, as curl does: a server may refuse
    a large body before it has all arrived.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        sending = asyncio.ensure_future(writer.drain())
        raw = await reader.read()
        try:
            await sending
        except ConnectionError:
            if not raw:
                raise
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


def _signed(payment: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "transaction_updated", "data": {"id": payment}}).encode()
    return body, {"Content-Type": "application/json", "X-WEBHOOK-AUTH": sign_webhook(SECRET, body)}


async def _load(port: int) -> dict[str, Any]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(i)
    latencies: list[float] = []
    failures: list[str] = []
    answered_ok = 0
    start = asyncio.Event()

    async def client() -> None:
        nonlocal answered_ok
        await start.wait()  # all 500 connect at once: the backlog must hold them
        while not queue.empty():
            i = queue.get_nowait()
            body, headers = _signed(f"pt_load_{i:05d}")
            began = time.perf_counter()
            try:
                status, answer = await asyncio.wait_for(
                    _request(port, "POST", body, headers), TIMEOUT_SECONDS
                )
            except TimeoutError:
                failures.append(f"{i}: timed out")
                continue
            except OSError as exc:
                failures.append(f"{i}: {type(exc).__name__}")
                continue
            latencies.append(time.perf_counter() - began)
            if (status, answer) == (200, {"ok": True}):
                answered_ok += 1
            else:
                failures.append(f"{i}: {status} {answer}")

    tasks = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    began = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": REQUESTS,
        "clients": CLIENTS,
        "ok": answered_ok,
        "failures": failures,
        "seconds": round(elapsed, 2),
        "per_second": round(REQUESTS / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


async def _hostile(port: int) -> list[tuple[str, int, Any]]:
    """Each hostile request once, during the load: (what, status, JSON body)."""
    deep = b"[" * 200_000
    malformed = b'{"data": {"id": "pt_1"'
    cases = [
        ("deep nesting", "POST", deep, {"X-WEBHOOK-AUTH": sign_webhook(SECRET, deep)}),
        ("malformed", "POST", malformed, {"X-WEBHOOK-AUTH": sign_webhook(SECRET, malformed)}),
        ("50 MB", "POST", b"[" + b"0," * (25 << 20) + b"0]", {}),
        ("wrong method", "PUT", b"{}", {}),
    ]
    results = []
    for what, method, body, extra in cases:
        headers = {"Content-Type": "application/json", **extra}
        status, answer = await asyncio.wait_for(_request(port, method, body, headers), 30)
        results.append((what, status, answer))
    return results


async def _load_with_hostiles(port: int) -> tuple[dict[str, Any], list[tuple[str, int, Any]]]:
    load, hostile = await asyncio.gather(_load(port), _hostile(port))
    return load, hostile


def test_2000_signed_callbacks_from_500_clients_with_hostile_requests_among_them(
    tmp_path: Path, redis_namespace: tuple[str, str]
) -> None:
    redis_url, namespace = redis_namespace
    port = _free_port()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "REDIS_URL": redis_url,
        "REDIS_NAMESPACE": namespace,
        "TALLY_SOURCES": "ebioro",
        "EBIORO_PUBLIC_KEY": "pk_test_load",
        "EBIORO_SECRET_KEY": SECRET,
        "EBIORO_BASE_URL": "https://test-merchant.ebioro.com",
        "TALLY_LOG_FORMAT": "json",
        "TALLY_LOG_LEVEL": "warning",  # 2,000 accepted lines would be the test's slowest part
    }
    release = subprocess.run(
        [sys.executable, "-m", "worker.app.cli", "db", "upgrade"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert release.returncode == 0, release.stdout + release.stderr
    server = TallyProcess(
        ["callbacks", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "callbacks.log"
    )
    try:
        server.wait_for(lambda: _listening(port), timeout=60)
        load, hostile = asyncio.run(_load_with_hostiles(port))
        print("\ncallback load:", json.dumps({k: v for k, v in load.items() if k != "failures"}))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "callback-load.json").write_text(json.dumps(load, indent=2), encoding="utf-8")

        assert load["failures"] == [], load["failures"][:20]
        assert load["ok"] == REQUESTS
        expected = {"deep nesting": 400, "malformed": 400, "50 MB": 413, "wrong method": 405}
        assert {what: status for what, status, _ in hostile} == expected
        assert all(answer["ok"] is False for _, _, answer in hostile)
        # Every delivery became exactly one re-fetch on the broker.
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.hlen(f"{namespace}:tally-objects.msgs") == REQUESTS
        finally:
            client.close()
        assert server.proc.poll() is None  # still up
    finally:
        code = server.stop(timeout=60)
    assert code == 0, server.tail()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
