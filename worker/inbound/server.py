"""The callbacks HTTP server: ``/callbacks/<source>`` for every configured source whose gateway
sends callbacks, and ``/healthz``.

The gateway's verifier (``worker.gateways.contract.Verifier``) authenticates a delivery and names
the object it is about; this server does the rest, the same for every gateway: refuse replays,
enqueue a re-fetch of that object, answer. The body is never trusted: the object's data always
comes from a fresh API call made by the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from ledger import jsonx
from worker.config import Settings
from worker.gateways.contract import Accepted, Delivery, FollowUp, Verifier
from worker.inbound.replay import ReplayCache
from worker.logging import get_logger

log = get_logger(__name__)

CALLBACKS_PREFIX = "/callbacks/"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1 << 20

Response = tuple[int, dict[str, Any]]
Enqueue = Callable[[str, FollowUp], object]  # (source, object to re-fetch)


def callback_path(source: str) -> str:
    return CALLBACKS_PREFIX + source


@dataclass(frozen=True)
class Route:
    """One source's callback endpoint."""

    source: str
    verifier: Verifier


def routes_for(settings: Settings) -> dict[str, Route]:
    """Path → route, for every configured source whose gateway takes callbacks."""
    policy = settings.inbound_policy
    return {
        callback_path(name): Route(name, config.gateway.verifier(config.settings, policy))
        for name, config in settings.sources.items()
        if config.gateway.verifier is not None
    }


def handle_delivery(
    route: Route, delivery: Delivery, *, replay_cache: ReplayCache, enqueue: Enqueue
) -> Response:
    """Verify one delivery, remember it, enqueue its re-fetch: (status, JSON body)."""
    source, path = route.source, urlsplit(delivery.target).path
    verdict = route.verifier.check(delivery)
    if not isinstance(verdict, Accepted):
        event = "callback_refused" if verdict.status == 401 else "callback_rejected"
        log.warning(event, source=source, reason=verdict.reason, method=delivery.method, path=path)
        return verdict.status, {"ok": False, "error": verdict.error}
    # Remembered only once authentic, so forged requests cannot fill the cache.
    key = f"{source}:{verdict.replay_key}"
    refetch = verdict.refetch
    what = {"source": source, "kind": refetch.kind, "external_id": refetch.external_id}
    if not replay_cache.remember(key, verdict.replay_seconds):
        if verdict.replays_refused:
            log.warning(
                "callback_refused", source=source, reason="replayed", method=delivery.method
            )
            return 401, {"ok": False, "error": "unauthorized"}
        log.info("callback_duplicate", **what)
        return 200, {"ok": True, "duplicate": True}
    try:
        enqueue(source, refetch)
    except Exception:
        replay_cache.forget(key)  # let the gateway's retry of this delivery through
        log.exception("callback_enqueue_failed", **what)
        return 503, {"ok": False, "error": "temporarily unavailable, retry later"}
    log.info("callback_accepted", method=delivery.method, **what)
    return 200, {"ok": True}


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes; without TCP_NODELAY the second one
    # waits ~40 ms for the delayed ACK on every response.
    disable_nagle_algorithm = True
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stall mid-request before its connection is dropped

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raw_length = self.headers.get("Content-Length") or "0"
        if not raw_length.isdigit() or int(raw_length) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be taken for the next request
            self._reply(413, {"ok": False, "error": "body too large or of unknown length"})
            return
        length = int(raw_length)
        body = self.rfile.read(length) if length > 0 else b""
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            self._reply(200, {"status": "ok"})
        elif path in self.server.routes:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._reply(*self.server.handle(path, self.command, self.path, headers, body))
        else:
            self._reply(404, {"ok": False, "error": "not found"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = jsonx.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's stderr access log; each outcome is logged by the handler."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: Mapping[str, Route]
    handle: Callable[[str, str, str, Mapping[str, str], bytes], Response]


class CallbackServer:
    """A threaded HTTP server for the sources' callback routes and ``/healthz``; binds on
    creation. ``enqueue(source, object)`` sends the re-fetch."""

    def __init__(
        self,
        settings: Settings,
        enqueue: Enqueue,
        replay_cache: ReplayCache,
        host: str | None = None,
        port: int | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.routes = routes_for(settings)
        self._public_url = settings.tally_public_url
        self._enqueue = enqueue
        self._replay_cache = replay_cache
        self._clock = clock
        port = settings.tally_callback_port if port is None else port
        self._httpd = _Server((host or settings.tally_callback_host, port), _Handler)
        self._httpd.routes = self.routes
        self._httpd.handle = self._handle
        self._thread: threading.Thread | None = None

    def _handle(
        self, path: str, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        # Gateways sign the URL they called; behind a proxy our own Host and scheme differ.
        base = self._public_url or f"http://{headers.get('host', '')}"
        delivery = Delivery(method, target, base + target, headers, body, self._clock())
        return handle_delivery(
            self.routes[path], delivery, replay_cache=self._replay_cache, enqueue=self._enqueue
        )

    @property
    def url(self) -> str:
        host = cast(str, self._httpd.server_address[0])  # an IPv4/IPv6 server: a str
        return f"http://{host}:{self._httpd.server_port}"

    def start(self) -> None:
        for route in self.routes.values():
            for warning in route.verifier.warnings():
                log.warning("callbacks_not_configured", source=route.source, detail=warning)
        if not self._public_url:
            log.warning(
                "callbacks_public_url_unset",
                detail="verifying signatures against http://<Host header>; set "
                "TALLY_PUBLIC_URL to this server's public URL when behind a proxy",
            )
        # A short poll keeps stop() quick; the cost is an idle wake-up every 50 ms.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="callbacks-http", daemon=True
        )
        self._thread.start()
        log.info("callbacks_listening", url=self.url, paths=sorted(self.routes))

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
