"""A sandbox over real HTTP: the server loop every provider's sandbox runs on.

Per API request: latency (known endpoints), then the provider's authentication (401 in its
error envelope), then one fault draw on known endpoints (429 with ``Retry-After``, 500, or a
200 whose body is cut in half), then the provider's answer. Admin requests skip all three.
``RunningSandbox`` serves from a daemon thread with stdlib ``ThreadingHTTPServer`` (port 0
picks a free port) and is a context manager whose ``stop()`` also stops the webhook sender.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from ledger import jsonx
from sandbox.kit.faults import (
    RATE_LIMITED,
    SERVER_ERROR,
    TRUNCATED,
    FaultInjector,
    FaultRates,
)
from worker.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Reply:
    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return jsonx.dumps(self.payload).encode("utf-8")


def is_http_url(url: str) -> bool:
    """Whether ``url`` can receive webhooks/callbacks: http(s) with a host."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True)
class SandboxApp:
    """What a provider plugs into the server loop: its endpoints, auth, envelope and admin API."""

    provider: str  # names the fault stream, the threads and the log lines
    admin_prefix: str
    faults: Callable[[], FaultRates]
    is_endpoint: Callable[[str], bool]  # (path): latency and faults apply
    # (method, raw target, lower-case headers, body, now) → why it is refused (401), or None
    refusal: Callable[[str, str, Mapping[str, str], bytes, datetime], str | None]
    answer: Callable[[str, str], Reply]  # (method, raw target) of an authenticated request
    admin: Callable[[str, str, bytes], Reply]  # (method, path, body)
    fail: Callable[..., Reply]  # (status, reason, headers=None): the provider's error envelope


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class ServeConfig(Protocol):
    @property
    def seed(self) -> int: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: SandboxApp, host: str, port: int, seed: int) -> None:
        self.app = app
        self.faults = FaultInjector(app.provider, seed, app.faults)
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is normal for a test server; say nothing else on stderr.
        log.debug("sandbox_connection_error", client=str(client_address))


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes; without TCP_NODELAY the second one
    # waits ~40 ms for the delayed ACK on every response.
    disable_nagle_algorithm = True
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

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: ``_serve`` logs one structured line per request instead."""

    def _serve(self, method: str) -> None:
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = urlsplit(self.path).path
        if path.startswith(app.admin_prefix):
            reply = app.admin(method, path, body)
            self._send(reply.status, reply.body(), reply.headers)
            return
        status, payload, headers, fault = self._api(app, method, path, body)
        self._send(status, payload, headers)
        log.debug(
            "sandbox_request",
            provider=app.provider,
            method=method,
            path=path,
            status=status,
            fault=fault,
        )

    def _api(
        self, app: SandboxApp, method: str, path: str, body: bytes
    ) -> tuple[int, bytes, Mapping[str, str], str | None]:
        known = app.is_endpoint(path)
        if known:
            self.server.faults.delay()
        headers = {name.lower(): value for name, value in self.headers.items()}
        problem = app.refusal(method, self.path, headers, body, datetime.now(UTC))
        if problem:
            reply = app.fail(401, problem)
            return reply.status, reply.body(), reply.headers, None
        fault = self.server.faults.draw() if known else None
        if fault == RATE_LIMITED:
            retry_after = str(app.faults().retry_after_seconds)
            reply = app.fail(429, "too many requests", {"Retry-After": retry_after})
        elif fault == SERVER_ERROR:
            reply = app.fail(500, "internal server error")
        else:
            reply = app.answer(method, self.path)
        payload = reply.body()
        if fault == TRUNCATED:
            payload = payload[: len(payload) // 2]
        return reply.status, payload, reply.headers, fault

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
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


C = TypeVar("C", bound=ServeConfig)
W = TypeVar("W")


class RunningSandbox(Generic[C, W]):
    """A sandbox serving in the background (``base_url``, ``world``, ``stop()``); a context
    manager."""

    def __init__(self, config: C, world: W, app: SandboxApp, services: Sequence[Service] = ()):
        self.config = config
        self.world = world
        self._server = _Server(app, config.host, config.port, config.seed)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._services = tuple(services)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{app.provider}-sandbox-http",
            daemon=True,
        )
        self._stopped = False

    def start(self) -> RunningSandbox[C, W]:
        for service in self._services:
            service.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and sending webhooks/callbacks; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        for service in self._services:
            service.stop()

    def __enter__(self) -> RunningSandbox[C, W]:
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
