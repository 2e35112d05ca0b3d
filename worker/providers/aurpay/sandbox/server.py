"""The sandbox over real HTTP: the four Aurpay endpoints (auth, then faults) and ``/_admin/``.

``start_sandbox(config)`` builds the world, binds (port 0 picks a free port), serves from a
daemon thread with stdlib ``ThreadingHTTPServer`` and returns a ``RunningSandbox``, a context
manager whose ``stop()`` shuts the server and the callback sender down.

Per API request: latency, then authentication (401 with the error envelope), then one fault
draw (429 with ``Retry-After``, 500, or a 200 whose body is cut in half), then the answer.
Admin requests skip all three.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from worker.logging import get_logger
from worker.providers.aurpay.sandbox import admin, api
from worker.providers.aurpay.sandbox.access import refusal
from worker.providers.aurpay.sandbox.callbacks import CallbackSender
from worker.providers.aurpay.sandbox.faults import (
    RATE_LIMITED,
    SERVER_ERROR,
    TRUNCATED,
    FaultInjector,
)
from worker.providers.aurpay.sandbox.model import SandboxConfig
from worker.providers.aurpay.sandbox.world import World

log = get_logger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: SandboxConfig, world: World) -> None:
        self.config = config
        self.world = world
        self.faults = FaultInjector(config.seed, world.faults)
        super().__init__((config.host, config.port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is normal for a test server; say nothing else on stderr.
        log.debug("sandbox_connection_error", client=str(client_address))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Silenced: ``_serve`` logs one structured line per request instead."""

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = urlsplit(self.path).path
        if path.startswith(admin.PREFIX):
            reply = admin.answer(self.server.world, method, path, body)
            self._send(reply.status, reply.body(), reply.headers)
            return
        status, payload, headers, fault = self._api(method, body)
        self._send(status, payload, headers)
        log.debug("sandbox_request", method=method, path=path, status=status, fault=fault)

    def _api(self, method: str, body: bytes) -> tuple[int, bytes, dict[str, str], str | None]:
        config, world = self.server.config, self.server.world
        known = api.endpoint(urlsplit(self.path).path) is not None
        if known:
            self.server.faults.delay()
        problem = refusal(
            {name.lower(): value for name, value in self.headers.items()},
            method,
            self.path,
            body,
            config.credentials,
            sign_query=config.sign_query,
            max_skew_seconds=config.max_skew_seconds,
            now=datetime.now(UTC),
        )
        if problem:
            reply = api.fail(401, problem)
            return reply.status, reply.body(), dict(reply.headers), None
        fault = self.server.faults.draw() if known else None
        if fault == RATE_LIMITED:
            retry_after = str(world.faults().retry_after_seconds)
            reply = api.fail(429, "too many requests", {"Retry-After": retry_after})
        elif fault == SERVER_ERROR:
            reply = api.fail(500, "internal server error")
        else:
            reply = api.answer(world, method, self.path)
        payload = reply.body()
        if fault == TRUNCATED:
            payload = payload[: len(payload) // 2]
        return reply.status, payload, dict(reply.headers), fault

    def _send(self, status: int, payload: bytes, headers: Any) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class RunningSandbox:
    """A sandbox serving in the background: ``base_url``, ``world``, ``stop()``; a context manager."""

    def __init__(self, config: SandboxConfig, world: World) -> None:
        self.config = config
        self.world = world
        self._server = _Server(config, world)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._callbacks = CallbackSender(world, config.credentials)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )
        self._stopped = False

    def start(self) -> RunningSandbox:
        self._callbacks.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and sending callbacks; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._callbacks.stop()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningSandbox(base_url={self.base_url!r}, seed={self.config.seed})"


def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Build the world from ``config`` and serve it; raises ``OSError`` if the port is taken."""
    return RunningSandbox(config, World(config)).start()
