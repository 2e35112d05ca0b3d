"""The edge server over real sockets: the listen backlog, JSON for every error (its own and an
app's), apps mounted by prefix, and a graceful drain that finishes what is in flight."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest

from worker.edge import EdgeLimits, EdgeServer, HTTPError, json_response, mount, serve


def _app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = str(environ["PATH_INFO"])
    if path == "/crash":
        raise RuntimeError("a bug, with a secret-ish detail sk_live_123")
    if path == "/teapot":
        raise HTTPError(418, "short and stout")
    if path == "/slow":
        time.sleep(1.0)
    payload = {"script": environ["SCRIPT_NAME"], "path": path, "uri": environ["REQUEST_URI"]}
    return json_response(start_response, 200, payload)


@pytest.fixture
def edge() -> Iterator[EdgeServer]:
    server = serve(mount({"/callbacks": _app, "/": _app}), host="127.0.0.1", port=0, name="test")
    yield server
    server.stop(drain_seconds=1)


def test_the_listen_backlog_holds_a_burst(edge: EdgeServer) -> None:
    listening = subprocess.run(
        ["ss", "-Hltn", f"sport = :{edge.port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    # ss shows a listening socket's backlog in Send-Q: the stdlib server's was 5.
    assert listening[0] == "LISTEN" and int(listening[2]) >= 128
    with pytest.raises(ValueError, match="backlog"):
        EdgeLimits(backlog=5)


def test_errors_are_json_whoever_makes_them(edge: EdgeServer) -> None:
    crash = httpx.get(f"{edge.url}/crash", timeout=10)
    assert (crash.status_code, crash.json()) == (
        500,
        {"ok": False, "status": 500, "error": "internal server error"},
    )
    assert "sk_live" not in crash.text
    teapot = httpx.get(f"{edge.url}/teapot", timeout=10)
    assert (teapot.status_code, teapot.json()["error"]) == (418, "short and stout")
    too_big = httpx.post(f"{edge.url}/x", content=b"x" * (2 << 20), timeout=10)
    assert too_big.status_code == 413 and too_big.json()["status"] == 413
    assert too_big.headers["content-type"] == "application/json"


def test_apps_are_mounted_by_prefix(edge: EdgeServer) -> None:
    inner = httpx.get(f"{edge.url}/callbacks/aurpay?order_id=%20x", timeout=10).json()
    assert inner == {
        "script": "/callbacks",
        "path": "/aurpay",
        "uri": "/callbacks/aurpay?order_id=%20x",
    }
    outer = httpx.get(f"{edge.url}/callbacksX", timeout=10).json()
    assert (outer["script"], outer["path"]) == ("", "/callbacksX")
    only = serve(mount({"/a": _app}), host="127.0.0.1", port=0, name="test-404")
    try:
        missing = httpx.get(f"{only.url}/b", timeout=10)
        assert (missing.status_code, missing.json()["error"]) == (404, "not found")
    finally:
        only.stop(drain_seconds=1)


def test_stop_drains_in_flight_requests_and_refuses_new_connections() -> None:
    server = serve(_app, host="127.0.0.1", port=0, name="drain")
    idle = socket.create_connection(("127.0.0.1", server.port))  # keep-alive, nothing asked
    answers: list[int] = []
    slow = threading.Thread(
        target=lambda: answers.append(httpx.get(f"{server.url}/slow", timeout=10).status_code)
    )
    slow.start()
    time.sleep(0.3)  # the slow request is in flight
    began = time.monotonic()
    server.stop(drain_seconds=5)
    took = time.monotonic() - began
    slow.join()
    assert answers == [200]  # finished, not cut off
    assert 0.4 < took < 4  # waited for it, not for the idle connection
    assert idle.recv(1) == b""  # the idle keep-alive connection was closed
    idle.close()
    assert server.draining
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/", timeout=2)


def test_a_client_trickling_its_request_is_cut_off() -> None:
    limits = EdgeLimits(request_timeout_seconds=1.0)
    server = serve(_app, host="127.0.0.1", port=0, name="slowloris", limits=limits)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            began = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\n")
            closed = False
            for _ in range(40):  # a header line every 0.2 s: never silent, never done
                time.sleep(0.2)
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed = True
                    break
                sock.settimeout(0.01)
                try:
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                finally:
                    sock.settimeout(10)
            assert closed and time.monotonic() - began < 4
        # A prompt client is still served.
        assert httpx.get(f"{server.url}/", timeout=10).status_code == 200
    finally:
        server.stop(drain_seconds=1)
