"""Infrastructure faults a chaos test owns: a redis-server of its own, and a TCP proxy that can
cut every connection through it. Everything binds 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import redis

from tests.helpers.waiting import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway ``redis-server`` on its own port, never persisted (``--save ""``, no AOF):
    killing it and starting it again on the same port gives an EMPTY Redis."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        found = shutil.which("redis-server")
        if found is None:
            raise AssertionError("redis-server is not installed")
        self.program = found
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = (self.workdir / f"redis-{self.starts}.log").open("wb")
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(
            [self.program, *args, "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child holds its own descriptor
        try:
            wait_until(self._answers, 15, lambda: f"redis-server on port {self.port} to answer")
        except BaseException:
            self.kill()
            raise

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} exited: {self.proc.returncode}")
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: everything it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _reset(sock: socket.socket) -> None:
    """Close with an RST (linger 0), as a dropped network path looks to the peer. Shutting
    the reading side first wakes a pump thread blocked in ``recv`` on it (sends nothing)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    sock.close()


class TcpProxy:
    """127.0.0.1:``port`` → 127.0.0.1:``target_port``, one pair of pump threads per connection.

    ``cut()`` resets every open connection and refuses new ones (accepted, then reset at once)
    until ``mend()``: a network fault between tally and the server, which keeps running.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # the accept loop checks for stop this often
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refusing = False
        self._stop = threading.Event()
        self.connections = 0
        self.dropped = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, name="chaos-proxy", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with self._lock:
                refusing = self._refusing
                if refusing:
                    self.refused += 1
            if refusing:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self.connections += 1
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass  # cut, or the peer went away
        finally:
            for sock in (src, dst):
                self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            known = sock in self._open
            self._open.discard(sock)
        if known:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            victims, self._open = list(self._open), set()
            self.dropped += len(victims) // 2
        for sock in victims:
            _reset(sock)

    def mend(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.cut()
        self._thread.join(timeout=5)

    def outage(self, seconds: float) -> None:
        """Cut now, mend after ``seconds``."""
        self.cut()
        time.sleep(seconds)
        self.mend()
