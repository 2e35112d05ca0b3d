"""The edge's connections: errors waitress answers itself in the apps' JSON shape, a gentle
close after one, and a deadline for a request to arrive whole."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from worker.edge.wsgi import error_body
from worker.logging import get_logger
from worker.metrics import http_answered

log = get_logger(__name__)

# After an error answer, what the client still sends is read and dropped: until it stops for
# LINGER_IDLE_SECONDS, at most LINGER_SECONDS in all (nginx's lingering_timeout/lingering_time).
LINGER_IDLE_SECONDS = 5.0
LINGER_SECONDS = 30.0


class JsonErrorTask(ErrorTask):
    """The errors waitress answers itself (bad request line, 413, 431, a crashed app) in the
    same JSON shape as the apps' own."""

    def execute(self) -> None:
        task: Any = self  # types-waitress describes ``request`` and the headers list wrongly
        error = task.request.error
        status = int(error.code)
        body = json.dumps(error_body(status, f"{error.reason}: {error.body}".lower())).encode()
        self.status = f"{status} {error.reason}"
        http_answered(task.channel.server.adj.ident.removeprefix("tally-"), status)
        task.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        task.channel.linger = True  # the client may still be sending the rest
        self.content_length = len(body)
        self.write(body)


class JsonChannel(HTTPChannel):
    """A connection whose server-made errors are JSON, closed gently after one, and closed
    when a request takes longer than the server's ``request_timeout`` to arrive: waitress's own
    timeout counts only silence, so a client sending a byte every few seconds would hold its
    connection for ever.

    After such an error the client may still be sending (the rest of a 50 MB body): closing
    with unread data makes the kernel send a reset, which destroys our answer before the
    client reads it. So the channel stops writing, reads and discards for a moment
    (``LINGER_IDLE_SECONDS`` of silence, ``LINGER_SECONDS`` at most), then closes, as nginx's
    lingering close does.
    """

    error_task_class = JsonErrorTask
    linger = False
    _linger_until = 0.0
    _linger_idle_until = 0.0
    _request_began = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None:  # the first bytes of a new request
            self._request_began = time.monotonic()
        return bool(super().received(data))

    def _too_slow(self) -> bool:
        if self.request is None:
            return False
        limit = float(getattr(self.server, "request_timeout", 30.0))
        return time.monotonic() - self._request_began > limit

    def handle_close(self) -> None:
        if self.linger and not self._linger_until and self.socket is not None:
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                super().handle_close()
                return
            now = time.monotonic()
            self._linger_until = now + LINGER_SECONDS
            self._linger_idle_until = now + LINGER_IDLE_SECONDS
            self.will_close = self.close_when_flushed = False
            return
        super().handle_close()

    def readable(self) -> bool:
        if not self._linger_until:
            if self._too_slow() and not self.will_close:
                log.info("edge_request_timeout", client=str(self.addr[0]))
                self.will_close = True  # closed on the next write pass, nothing sent
                return False
            return bool(super().readable())
        if time.monotonic() > min(self._linger_until, self._linger_idle_until):
            super().handle_close()
            return False
        return True

    def writable(self) -> bool:
        return not self._linger_until and bool(super().writable())

    def handle_read(self) -> None:
        if not self._linger_until:
            super().handle_read()
            return
        try:
            data = self.socket.recv(1 << 16) if self.socket is not None else b""
        except OSError:
            data = b""
        if not data:  # the client is done (or gone): now the close is clean
            super().handle_close()
        else:
            self._linger_idle_until = time.monotonic() + LINGER_IDLE_SECONDS
