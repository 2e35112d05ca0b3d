"""The ops HTTP server of a long-running process: ``/metrics`` (this process's registry),
``/healthz`` (the process is alive) and ``/readyz`` (what the readiness callable says)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from worker.logging import get_logger
from worker.metrics import REGISTRY, LedgerStateCollector

log = get_logger(__name__)


class ReadinessReport(Protocol):
    @property
    def ok(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 10

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encode, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encode(self.server.registry), content_type)
        elif path == "/healthz":
            self._json(200, {"status": "ok"})
        elif path == "/readyz":
            self._json(*self.server.readyz())
        else:
            self._json(404, {"error": "not found"})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds are not news."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    readyz: Callable[[], tuple[int, dict[str, Any]]]


class OpsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port; binds on creation."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], ReadinessReport],
        *,
        registry: CollectorRegistry = REGISTRY,
        collector: LedgerStateCollector | None = None,
    ) -> None:
        self._ready = ready
        self._registry = registry
        self._collector = collector
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.registry = registry
        self._httpd.readyz = self._readyz
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        # An AF_INET server's address is (str, int); the stub also allows bytes (AF_UNIX).
        return f"http://{host!s}:{port}"

    def _readyz(self) -> tuple[int, dict[str, Any]]:
        if self._stopping.is_set():
            return 503, {"ready": False, "reason": "not ready: shutting down"}
        try:
            report = self._ready()
        except Exception as exc:  # a bug in a check must read as "not ready", not a hang
            log.exception("readiness_check_failed")
            return 503, {
                "ready": False,
                "reason": f"not ready: check failed ({type(exc).__name__})",
            }
        return (200 if report.ok else 503), report.to_json()

    def start(self) -> None:
        if self._collector is not None:
            self._registry.register(self._collector)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="ops-http", daemon=True
        )
        self._thread.start()
        log.info("ops_listening", url=self.url, paths=["/metrics", "/healthz", "/readyz"])

    def mark_stopping(self) -> None:
        """From now on /readyz says no: load balancers stop sending before the process goes."""
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        if self._collector is not None:
            self._registry.unregister(self._collector)
            self._collector = None
