"""The edge's HTTP server: waitress, with bounded threads and connections, a deep listen
backlog, request size limits, idle timeouts, JSON errors and a graceful drain.

Why waitress: its event loop reads each request (headers and body, up to the limits) before a
worker thread sees it, so slow or stalled clients hold a socket, not a thread; the threads,
the connections, the backlog and the request sizes are all bounded by settings; and it is
pure Python, maintained by the Pylons project, with no C extension to build.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from waitress import wasyncore
from waitress.server import MultiSocketServer, create_server

from worker.edge.channel import JsonChannel
from worker.edge.wsgi import WSGIApp, json_errors
from worker.logging import get_logger
from worker.metrics import http_answered

log = get_logger(__name__)

# waitress warns on every request that waits for a thread; under a burst that is thousands of
# lines saying what the queue-depth figures already show.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

# The event loop thread and the handler threads share one GIL. Under a burst the loop thread
# is busy for long stretches (each pass asks every open connection whether it is readable),
# and a handler coming back from a Redis round trip then waits a whole switch interval (5 ms
# by default) for the GIL, several times per request: measured with 500 concurrent clients,
# throughput fell from ~900 to ~60 requests/s and requests timed out. A shorter interval
# hands the GIL back within half a millisecond; the cost is a little more switching.
GIL_SWITCH_SECONDS = 0.0005


@dataclass(frozen=True)
class EdgeLimits:
    """What one edge server holds at once, and for how long."""

    threads: int = 8  # requests handled at the same time; the rest wait in a queue
    backlog: int = 1024  # connections the kernel holds before accept (the stdlib's was 5)
    connection_limit: int = 1000  # open connections; beyond it, new ones wait in the backlog
    max_body_bytes: int = 1 << 20  # larger bodies get 413 before they are read
    max_header_bytes: int = 64 << 10  # larger headers get 431
    idle_timeout_seconds: int = 30  # a connection with no request in flight is closed after
    request_timeout_seconds: float = 30.0  # to send one whole request (a trickle is cut off)
    drain_seconds: float = 10.0  # stop(): how long in-flight requests may take to finish

    def __post_init__(self) -> None:
        if self.backlog < 128:
            raise ValueError("backlog must be at least 128")
        if self.threads < 1 or self.connection_limit < 1 or self.max_body_bytes < 0:
            raise ValueError("threads, connection_limit and max_body_bytes must be positive")


class EdgeServer:
    """One listening socket served by waitress; binds on creation, serves after ``start()``.

    ``stop()`` drains: it stops accepting, lets requests in flight finish (up to
    ``limits.drain_seconds``), closes idle keep-alive connections, then closes the rest.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        host: str,
        port: int,
        name: str,
        limits: EdgeLimits | None = None,
    ) -> None:
        self.name = name
        self.limits = limits or EdgeLimits()
        self._draining = threading.Event()
        lim = self.limits
        server = create_server(
            self._measured(json_errors(app)),
            host=host,
            port=port,
            threads=lim.threads,
            backlog=lim.backlog,
            connection_limit=lim.connection_limit,
            max_request_body_size=lim.max_body_bytes,
            max_request_header_size=lim.max_header_bytes,
            channel_timeout=lim.idle_timeout_seconds,
            cleanup_interval=max(1, min(30, lim.idle_timeout_seconds // 2)),
            asyncore_use_poll=True,  # select() stops at file descriptor 1024
            ident=f"tally-{name}",
            expose_tracebacks=False,
            # Our apps read what they trust from the request itself; no proxy is trusted.
            clear_untrusted_proxy_headers=True,
        )
        if isinstance(server, MultiSocketServer):  # pragma: no cover - one host, one socket
            raise ValueError(f"{name}: listen on one address, not {host!r}")
        # Any: types-waitress misdescribes active_channels, pull_trigger and effective_host.
        raw: Any = server
        raw.channel_class = JsonChannel
        raw.request_timeout = lim.request_timeout_seconds  # read by JsonChannel
        self._server: Any = raw
        self._thread: threading.Thread | None = None

    def _measured(self, app: WSGIApp) -> WSGIApp:
        def measured(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            began = time.perf_counter()

            def counting(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
                http_answered(self.name, int(status[:3]), time.perf_counter() - began)
                return start_response(status, headers, *exc)

            return app(environ, counting)

        return measured

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def draining(self) -> bool:
        """True once ``stop()`` began: readiness should say no."""
        return self._draining.is_set()

    def start(self) -> EdgeServer:
        """Serve in a background thread; returns self."""
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
        self._thread = threading.Thread(
            target=self._server.run, name=f"{self.name}-http", daemon=True
        )
        self._thread.start()
        log.info("edge_listening", server=self.name, url=self.url, **_public(self.limits))
        return self

    def wait(self) -> None:
        """Block until the server has stopped."""
        if self._thread is not None:
            self._thread.join()

    def _in_loop(self, thunk: Callable[[], None]) -> None:
        """Run ``thunk`` on the event loop's thread (the only one that may touch sockets)."""
        self._server.trigger.pull_trigger(thunk)

    def stop(self, drain_seconds: float | None = None) -> None:
        """Stop accepting, finish what is in flight (up to ``drain_seconds``), close."""
        if self._draining.is_set() and self._thread is None:
            return
        self._draining.set()
        server = self._server
        if self._thread is None or not self._thread.is_alive():
            self._close_all()
            return
        deadline = time.monotonic() + (
            self.limits.drain_seconds if drain_seconds is None else drain_seconds
        )
        # The listening socket closes now: new connections are refused at once rather than
        # queued behind a server that will never accept them.
        self._in_loop(lambda: wasyncore.dispatcher.close(server))
        while server.active_channels and time.monotonic() < deadline:
            self._in_loop(self._close_idle)
            time.sleep(0.05)
        left = len(server.active_channels)
        if left:
            log.warning("edge_drain_timeout", server=self.name, connections=left)
        self._in_loop(self._close_all)
        self._thread.join(timeout=5)
        self._thread = None
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        log.info("edge_stopped", server=self.name)

    def _close_idle(self) -> None:
        for channel in list(self._server.active_channels.values()):
            busy = channel.requests or channel.request is not None or channel.total_outbufs_len
            if not busy:
                channel.will_close = True

    def _close_all(self) -> None:
        server = self._server
        for channel in list(server.active_channels.values()):
            channel.close()
        if server.socket is not None:
            wasyncore.dispatcher.close(server)
        server.trigger.close()  # the loop ends when nothing is left in its map


def _public(limits: EdgeLimits) -> dict[str, Any]:
    return {
        "threads": limits.threads,
        "backlog": limits.backlog,
        "connection_limit": limits.connection_limit,
        "max_body_bytes": limits.max_body_bytes,
    }


def serve(
    app: WSGIApp,
    *,
    host: str,
    port: int,
    name: str,
    limits: EdgeLimits | None = None,
    on_ready: Callable[[EdgeServer], object] | None = None,
    block: bool = False,
) -> EdgeServer:
    """Bind ``app`` on ``host:port`` and serve it in a background thread; ``on_ready(server)``
    runs once it listens. With ``block`` it returns only after ``stop()``."""
    server = EdgeServer(app, host=host, port=port, name=name, limits=limits).start()
    if on_ready is not None:
        on_ready(server)
    if block:
        server.wait()
    return server
