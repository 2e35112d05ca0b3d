"""Polling for a condition with a deadline (never a fixed sleep, never a timing assert)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], bool],
    timeout: float = 30,
    describe: Callable[[], str] = lambda: "the condition",
    interval: float = 0.02,
) -> None:
    """Return once ``condition()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {describe()}")
        time.sleep(interval)
