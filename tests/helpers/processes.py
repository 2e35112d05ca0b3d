"""Running ``tally`` commands as real processes: start, read their JSON log lines, kill, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dramatiq.brokers.redis import RedisBroker

from tests.helpers.waiting import wait_until
from worker.broker import requeue_from_dead_workers as requeue

TALLY = [sys.executable, "-m", "worker.app.cli"]


class TallyProcess:
    """One ``tally`` subprocess whose stdout and stderr go to ``log_path``; ``program`` is what
    runs ``args`` (default: this interpreter's ``worker.app.cli``)."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        program: Sequence[str] = tuple(TALLY),
    ) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._terminated = False
        self.proc = subprocess.Popen(
            [*program, *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        found = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by SIGKILL
        return found

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Wait for ``condition`` while this process runs; fail with its log if it exits."""

        def met() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"tally {self.args[0]} exited early:\n{self.tail()}")
            return condition()

        wait_until(met, timeout, lambda: f"it, while tally {self.args[0]} logged:\n{self.tail()}")

    def wait_for_event(self, name: str, timeout: float = 30) -> None:
        self.wait_for(lambda: any(e.get("event") == name for e in self.events()), timeout)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight messages stay unacknowledged."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self) -> None:
        """SIGTERM, once: ask for a clean shutdown (``stop`` waits for it). A second SIGTERM
        could land after the interpreter dropped its handlers and kill it mid-exit."""
        if not self._terminated and self.proc.poll() is None:
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait (SIGKILL if it does not exit in time); the exit code."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def stop_all(processes: list[TallyProcess]) -> list[int]:
    """Stop several processes at once (their shutdowns overlap); their exit codes."""
    for process in processes:
        process.terminate()
    return [process.stop() for process in processes]


def requeue_from_dead_workers(
    redis_url: str, namespace: str, queues: list[str], heartbeat_timeout_ms: int
) -> None:
    """Run the scheduler's minute job now (``worker.broker.requeue_from_dead_workers``): a test
    does not wait for the scheduler's next minute."""
    broker = RedisBroker(
        url=redis_url, namespace=namespace, heartbeat_timeout=heartbeat_timeout_ms, middleware=[]
    )
    try:
        requeue(broker, queues)
    finally:
        broker.client.close()
        broker.client.connection_pool.disconnect()
