"""The ops HTTP server of a long-running process, on the edge: ``/metrics`` (this process's
registry), ``/healthz`` (the process is alive) and ``/readyz`` (it can serve)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from worker.edge import EdgeLimits, EdgeServer, HTTPError, json_response
from worker.edge.wsgi import method_not_allowed, request_path, status_line
from worker.logging import get_logger
from worker.metrics import REGISTRY

log = get_logger(__name__)

OPS_PATHS = ("/metrics", "/healthz", "/readyz")
OPS_METHODS = ("GET", "HEAD")
# Probes and scrapes: a few at a time, no bodies.
OPS_LIMITS = EdgeLimits(threads=4, backlog=128, connection_limit=100, max_body_bytes=4096)


class ReadinessReport(Protocol):
    @property
    def ok(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


class Companion(Protocol):
    """Something started and stopped with the ops server (the chain verifier)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class OpsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port; binds on creation."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], ReadinessReport],
        *,
        registry: CollectorRegistry = REGISTRY,
        collectors: Sequence[Collector] = (),
        companions: Sequence[Companion] = (),
    ) -> None:
        self._ready = ready
        self._registry = registry
        self._collectors = list(collectors)
        self._companions = tuple(companions)
        self._stopping = False
        self._edge = EdgeServer(self._app, host=host, port=port, name="ops", limits=OPS_LIMITS)

    @property
    def url(self) -> str:
        return self._edge.url

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = request_path(environ)
        if path not in OPS_PATHS:
            raise HTTPError(404, "not found")
        if environ["REQUEST_METHOD"] not in OPS_METHODS:
            raise method_not_allowed(OPS_METHODS)
        if path == "/metrics":
            encode, content_type = choose_encoder(str(environ.get("HTTP_ACCEPT", "")))
            body = encode(self._registry)
            headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            start_response(status_line(200), headers)
            return [body]
        if path == "/healthz":
            return json_response(start_response, 200, {"status": "ok"})
        return json_response(start_response, *self._readyz())

    def _readyz(self) -> tuple[int, dict[str, Any]]:
        if self._stopping:
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
        for collector in self._collectors:
            self._registry.register(collector)
        self._edge.start()
        for companion in self._companions:
            companion.start()
        log.info("ops_listening", url=self.url, paths=list(OPS_PATHS))

    def mark_stopping(self) -> None:
        """From now on /readyz says no: load balancers stop sending before the process goes."""
        self._stopping = True

    def stop(self) -> None:
        self._stopping = True
        for companion in self._companions:
            companion.stop()
        self._edge.stop(drain_seconds=2)
        for collector in self._collectors:
            self._registry.unregister(collector)
        self._collectors = []
