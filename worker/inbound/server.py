"""The callbacks HTTP server: ``/callbacks/<source>`` for every configured source whose gateway
sends callbacks, and ``/healthz``, as a WSGI app served by the edge (``worker.edge``).

The gateway's verifier (``worker.gateways.contract.Verifier``) authenticates a delivery and names
the object it is about; this server does the rest, the same for every gateway: refuse replays,
enqueue a re-fetch of that object, answer. The body is never trusted: the object's data always
comes from a fresh API call made by the worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIEnvironment

from worker.config import Settings
from worker.edge import EdgeLimits, EdgeServer, HTTPError, WSGIApp, json_response, mount
from worker.edge.json_depth import MAX_JSON_DEPTH, nests_deeper_than
from worker.edge.wsgi import (
    error_body,
    method_not_allowed,
    read_body,
    request_headers,
    request_path,
    request_target,
)
from worker.gateways.contract import Accepted, Delivery, FollowUp, Verifier
from worker.inbound.replay import ReplayCache
from worker.logging import get_logger
from worker.metrics import callback_received

log = get_logger(__name__)

CALLBACKS_PREFIX = "/callbacks/"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1 << 20
HEALTH_METHODS = ("GET", "HEAD")
# The edge's limits for callbacks: a gateway retries, so a burst waits in the backlog or the
# queue rather than being refused; the threads only verify and enqueue.
CALLBACK_LIMITS = EdgeLimits(threads=16, max_body_bytes=MAX_BODY_BYTES, max_header_bytes=32 << 10)

Response = tuple[int, dict[str, Any]]
Enqueue = Callable[[str, FollowUp], object]  # (source, object to re-fetch)


def callback_path(source: str) -> str:
    return CALLBACKS_PREFIX + source


@dataclass(frozen=True)
class Route:
    """One source's callback endpoint."""

    source: str
    verifier: Verifier


def allowed_methods(verifier: Verifier) -> tuple[str, ...]:
    """The methods ``verifier`` takes: those it does not answer 405 (a verifier checks the
    method before anything else, so an empty probe tells)."""
    probe = datetime.now(UTC)
    return tuple(
        method
        for method in ("GET", "POST")
        if getattr(verifier.check(Delivery(method, "/", "/", {}, b"", probe)), "status", 0) != 405
    )


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


def _outcome(status: int, payload: Mapping[str, Any]) -> str:
    if status < 300:
        return "duplicate" if payload.get("duplicate") else "accepted"
    if status == 401:
        return "refused"
    return "rejected" if status < 500 else "unavailable"


def _json_problem(headers: Mapping[str, str], body: bytes) -> str | None:
    """Why ``body`` cannot be parsed as JSON, when it says (or looks like) it is JSON.

    Checked before any verifier parses it: a parser recurses once per nesting level, so a
    deeply nested body would exhaust the stack.
    """
    if not body:
        return None
    says_json = "json" in headers.get("content-type", "").lower()
    if not says_json and body.lstrip()[:1] not in (b"{", b"["):
        return None
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        return f"JSON nested more than {MAX_JSON_DEPTH} levels deep"
    if says_json:
        try:
            json.loads(body)
        except ValueError:  # bad UTF-8 too
            return "malformed JSON body"
    return None


class CallbackApp:
    """The callback routes and ``/healthz`` as a WSGI app. Paths are matched in full
    (``SCRIPT_NAME`` + ``PATH_INFO``), so it may be mounted at ``/`` or ``/callbacks``."""

    def __init__(
        self,
        settings: Settings,
        enqueue: Enqueue,
        replay_cache: ReplayCache,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.routes = routes_for(settings)
        self._allowed = {path: allowed_methods(r.verifier) for path, r in self.routes.items()}
        self._public_url = settings.tally_public_url
        self._enqueue = enqueue
        self._replay_cache = replay_cache
        self._clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = request_path(environ), str(environ["REQUEST_METHOD"])
        if path == HEALTH_PATH:
            if method not in HEALTH_METHODS:
                raise method_not_allowed(HEALTH_METHODS)
            return json_response(start_response, 200, {"status": "ok"})
        route = self.routes.get(path)
        if route is None:
            raise HTTPError(404, "not found")
        if method not in self._allowed[path]:
            log.warning("callback_rejected", source=route.source, reason="method", method=method)
            callback_received(route.source, "rejected")
            raise method_not_allowed(self._allowed[path])
        body = read_body(environ, MAX_BODY_BYTES)
        headers = request_headers(environ)
        problem = _json_problem(headers, body)
        if problem is not None:
            log.warning("callback_rejected", source=route.source, reason="bad_json", detail=problem)
            callback_received(route.source, "rejected")
            raise HTTPError(400, problem)
        status, payload = self._handle(route, method, request_target(environ), headers, body)
        callback_received(route.source, _outcome(status, payload))
        if status >= 400:
            extra = [("Allow", ", ".join(self._allowed[path]))] if status == 405 else []
            body_out = error_body(status, str(payload.get("error", "")))
            return json_response(start_response, status, body_out, extra)
        return json_response(start_response, status, payload)

    def _handle(
        self, route: Route, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        # Gateways sign the URL they called; behind a proxy our own Host and scheme differ.
        base = self._public_url or f"http://{headers.get('host', '')}"
        delivery = Delivery(method, target, base + target, headers, body, self._clock())
        return handle_delivery(
            route, delivery, replay_cache=self._replay_cache, enqueue=self._enqueue
        )

    def log_configuration(self) -> None:
        for route in self.routes.values():
            for warning in route.verifier.warnings():
                log.warning("callbacks_not_configured", source=route.source, detail=warning)
        if not self._public_url:
            log.warning(
                "callbacks_public_url_unset",
                detail="verifying signatures against http://<Host header>; set "
                "TALLY_PUBLIC_URL to this server's public URL when behind a proxy",
            )


class CallbackServer:
    """The callbacks on the edge; binds on creation. ``enqueue(source, object)`` sends the
    re-fetch. ``mounts`` serves other apps on the same port by path prefix (the callbacks keep
    ``/callbacks/*`` and ``/healthz``)."""

    def __init__(
        self,
        settings: Settings,
        enqueue: Enqueue,
        replay_cache: ReplayCache,
        host: str | None = None,
        port: int | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mounts: Mapping[str, WSGIApp] | None = None,
        limits: EdgeLimits = CALLBACK_LIMITS,
    ) -> None:
        self.app = CallbackApp(settings, enqueue, replay_cache, clock=clock)
        self.routes = self.app.routes
        app: WSGIApp = self.app
        if mounts:
            own = {CALLBACKS_PREFIX.rstrip("/"): self.app, HEALTH_PATH: self.app}
            app = mount({**mounts, **own})
        port = settings.tally_callback_port if port is None else port
        self._drain_seconds = float(settings.tally_shutdown_grace_seconds)
        self._edge = EdgeServer(
            app,
            host=host or settings.tally_callback_host,
            port=port,
            name="callbacks",
            limits=limits,
        )

    @property
    def url(self) -> str:
        return self._edge.url

    @property
    def draining(self) -> bool:
        return self._edge.draining

    def start(self) -> None:
        self.app.log_configuration()
        self._edge.start()
        log.info("callbacks_listening", url=self.url, paths=sorted(self.routes))

    def stop(self) -> None:
        """Drain: in-flight deliveries finish (up to TALLY_SHUTDOWN_GRACE_SECONDS)."""
        self._edge.stop(self._drain_seconds)
