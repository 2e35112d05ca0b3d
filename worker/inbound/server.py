"""The HTTP endpoint for provider callbacks: authenticate, take the object id, enqueue a re-fetch.

``/callbacks/aurpay`` (below) and ``/callbacks/ebioro`` (``worker.gateways.ebioro.webhook``).

The body is never trusted (Aurpay's signature covers only the Date header and the URL): the
order's data always comes from a fresh API call made by the refresh actor.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ledger import jsonx
from worker.config import Settings
from worker.gateways.aurpay.auth import constant_time_equal, is_fresh, sign_callback
from worker.gateways.ebioro.webhook import WEBHOOK_PATH, handle_ebioro_webhook
from worker.inbound.replay import ReplayCache
from worker.logging import get_logger

log = get_logger(__name__)

CALLBACK_PATH = "/callbacks/aurpay"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1 << 20
_ORDER_ID_PARAMS = ("order_id", "id", "orderId")
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_CONFIGURED = (
    "Aurpay callback authentication is not configured: "
    "set AURPAY_CALLBACK_TOKEN and AURPAY_CALLBACK_SECRET"
)

Response = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class CallbackConfig:
    """What the handler needs from the settings, with the secrets kept out of the repr."""

    token: str | None = field(repr=False)
    secret: str | None = field(repr=False)
    public_url: str | None
    max_skew_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackConfig:
        token, secret = settings.aurpay_callback_token, settings.aurpay_callback_secret
        return cls(
            token=token.get_secret_value() if token else None,
            secret=secret.get_secret_value() if secret else None,
            public_url=settings.tally_public_url,
            max_skew_seconds=settings.tally_callback_max_skew_seconds,
        )

    @property
    def configured(self) -> bool:
        return bool(self.token and self.secret)


def _refusal(
    config: CallbackConfig, path_and_query: str, headers: Mapping[str, str], now: datetime
) -> str | None:
    """Why the request is not authentic, or None. Reasons name the check, never a value."""
    expected_token, secret = config.token or "", config.secret or ""
    token, date = headers.get("callback-token", ""), headers.get("date", "")
    signature = headers.get("signature", "")
    if not token:
        return "missing_token"
    if not constant_time_equal(token, expected_token):
        return "bad_token"
    if not date:
        return "missing_date"
    if not is_fresh(date, now, config.max_skew_seconds):
        return "stale_or_invalid_date"
    if not signature:
        return "missing_signature"
    # Aurpay signs the public URL it called; behind a proxy our own Host and scheme differ.
    base = config.public_url or f"http://{headers.get('host', '')}"
    if not constant_time_equal(signature, sign_callback(secret, date, base + path_and_query)):
        return "bad_signature"
    return None


def _order_id(method: str, query: str, body: bytes) -> str | None:
    params = parse_qs(query, keep_blank_values=True)
    candidates: list[Any] = [params[name][0] for name in _ORDER_ID_PARAMS if name in params]
    if not candidates and method == "POST" and body:
        try:
            parsed = jsonx.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            candidates.append(parsed.get("order_id"))
    for value in candidates:
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if _ORDER_ID.fullmatch(text):
            return text
    return None


def handle_aurpay_callback(
    method: str,
    path_and_query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    settings_view: CallbackConfig,
    now: datetime,
    replay_cache: ReplayCache,
    enqueue_refresh: Callable[[str], Any],
) -> Response:
    """Authenticate one callback and enqueue a refresh of its order: (status, JSON body)."""
    if method not in ("GET", "POST"):
        return 405, {"ok": False, "error": "method not allowed"}
    if not settings_view.configured:
        return 503, {"ok": False, "error": _NOT_CONFIGURED}
    path = urlsplit(path_and_query).path
    lowered = {k.lower(): v for k, v in headers.items()}
    reason = _refusal(settings_view, path_and_query, lowered, now)
    if reason is None:
        order_id = _order_id(method, urlsplit(path_and_query).query, body)
        if order_id is None:
            log.warning("callback_rejected", reason="no_order_id", method=method, path=path)
            return 400, {"ok": False, "error": "no valid order id in the query or body"}
        # Remembered only once authentic, so forged requests cannot fill the cache.
        signature = lowered["signature"]
        if replay_cache.remember(signature, 2 * settings_view.max_skew_seconds):
            try:
                enqueue_refresh(order_id)
            except Exception:
                replay_cache.forget(signature)  # let Aurpay's retry of this request through
                log.exception("callback_enqueue_failed", order_id=order_id)
                return 503, {"ok": False, "error": "temporarily unavailable, retry later"}
            log.info("callback_accepted", method=method, order_id=order_id)
            return 200, {"ok": True}
        reason = "replayed_signature"
    log.warning("callback_refused", reason=reason, method=method, path=path)
    return 401, {"ok": False, "error": "unauthorized"}


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
        elif path in self.server.apps:
            headers = dict(self.headers.items())
            self._reply(*self.server.apps[path](self.command, self.path, headers, body))
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
        """Silence the stdlib's stderr access log; the handler logs each outcome itself."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    apps: dict[str, Callable[[str, str, Mapping[str, str], bytes], Response]]


class CallbackServer:
    """A threaded HTTP server for ``/callbacks/aurpay`` and ``/healthz``; binds on creation."""

    def __init__(
        self,
        settings: Settings,
        enqueue_refresh: Callable[[str], Any],
        replay_cache: ReplayCache,
        host: str | None = None,
        port: int | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        enqueue_ebioro_refresh: Callable[[str], Any] | None = None,
    ) -> None:
        self.config = CallbackConfig.from_settings(settings)
        secret = settings.ebioro_secret_key
        self._ebioro_secret = secret.get_secret_value() if secret else None
        self._enqueue_ebioro_refresh = enqueue_ebioro_refresh
        self._enqueue_refresh = enqueue_refresh
        self._replay_cache = replay_cache
        self._clock = clock
        port = settings.tally_callback_port if port is None else port
        self._httpd = _Server((host or settings.tally_callback_host, port), _Handler)
        self._httpd.apps = {CALLBACK_PATH: self._handle, WEBHOOK_PATH: self._handle_ebioro}
        self._thread: threading.Thread | None = None

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        return handle_aurpay_callback(
            method,
            target,
            headers,
            body,
            settings_view=self.config,
            now=self._clock(),
            replay_cache=self._replay_cache,
            enqueue_refresh=self._enqueue_refresh,
        )

    def _handle_ebioro(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        if self._enqueue_ebioro_refresh is None:
            return 404, {"ok": False, "error": "not found"}
        return handle_ebioro_webhook(
            method,
            headers,
            body,
            secret=self._ebioro_secret,
            replay_cache=self._replay_cache,
            enqueue_refresh=self._enqueue_ebioro_refresh,
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        if not self.config.configured:
            log.warning("callbacks_not_configured", detail=_NOT_CONFIGURED)
        if not self.config.public_url:
            log.warning(
                "callbacks_public_url_unset",
                detail="verifying signatures against http://<Host header>; "
                "set TALLY_PUBLIC_URL to the URL registered with Aurpay when behind a proxy",
            )
        # A short poll keeps stop() quick; the cost is an idle wake-up every 50 ms.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="callbacks-http", daemon=True
        )
        self._thread.start()
        log.info("callbacks_listening", url=self.url, path=CALLBACK_PATH)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
