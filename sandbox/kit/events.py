"""World-change listeners and the log of webhook/callback attempts, shared by the sandbox worlds.

Both are thread-safe. Listeners are called outside any lock the caller holds (``notify`` copies
the list first), so a listener may read the world back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from copy import deepcopy
from typing import Any, Generic, TypeVar

Listener = Callable[[str, dict[str, Any]], None]  # (event, the changed object)
D = TypeVar("D")


class Listeners:
    """Who hears about changes: ``notify(event, obj)`` calls each with a deep copy of ``obj``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def notify(self, event: str, obj: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event, deepcopy(obj))


class DeliveryLog(Generic[D]):
    """Every delivery attempt in order, with a blocking wait for tests."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._items: list[D] = []

    def record(self, delivery: D) -> None:
        with self._changed:
            self._items.append(delivery)
            self._changed.notify_all()

    def items(self) -> list[D]:
        with self._changed:
            return list(self._items)

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` attempts are recorded; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._items) >= count, timeout)
