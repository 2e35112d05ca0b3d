"""Sends a sandbox's webhooks/callbacks from one daemon thread, in order, and records each attempt.

The provider supplies ``deliver(client, job) -> delivery`` (build, sign, send) and
``failed(job, error_name) -> delivery``; a receiver that is down, slow or broken is recorded as
a failed delivery and never disturbs the sandbox.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

J = TypeVar("J")
D = TypeVar("D")


class BackgroundSender(Generic[J, D]):
    """A queue of jobs, one thread and one ``httpx.Client`` with a short timeout."""

    def __init__(
        self,
        name: str,
        deliver: Callable[[httpx.Client, J], D],
        failed: Callable[[J, str], D],
        record: Callable[[D], None],
        timeout_seconds: float = 2.0,
    ) -> None:
        self._deliver = deliver
        self._failed = failed
        self._record = record
        self._timeout = timeout_seconds
        self._jobs: queue.Queue[J | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def submit(self, job: J) -> None:
        self._jobs.put(job)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_seconds: float = 5.0) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout_seconds)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while (job := self._jobs.get()) is not None:
                try:
                    delivery = self._deliver(client, job)
                except Exception as exc:  # a sandbox must outlive any receiver, URL or bug here
                    delivery = self._failed(job, type(exc).__name__)
                self._record(delivery)
