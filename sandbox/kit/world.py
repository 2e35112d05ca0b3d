"""What every sandbox world has besides its data: the lock, fault rates the admin API may
change, change listeners (the webhook/callback sender) and the log of deliveries."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sandbox.kit.errors import SandboxError
from sandbox.kit.events import DeliveryLog, Listener, Listeners
from sandbox.kit.faults import FaultRates

D = TypeVar("D")


class WorldBase(Generic[D]):
    """Base of a provider's ``World``; ``D`` is its delivery record type."""

    def __init__(self, faults: FaultRates) -> None:
        self._lock = threading.RLock()  # guards all world state; subclasses use it too
        self._faults = faults
        self._listeners = Listeners()
        self._deliveries: DeliveryLog[D] = DeliveryLog()

    def set_faults(self, **changes: Any) -> FaultRates:
        # Rates from the admin API's JSON arrive as Decimal; they are shares of requests.
        changes = {k: float(v) if isinstance(v, Decimal) else v for k, v in changes.items()}
        with self._lock:
            try:
                self._faults = FaultRates(**{**self._faults.as_json(), **changes})
            except (TypeError, ValueError) as exc:
                raise SandboxError(str(exc)) from None
            return self._faults

    def faults(self) -> FaultRates:
        with self._lock:
            return self._faults

    def subscribe(self, listener: Listener) -> None:
        self._listeners.subscribe(listener)

    def record_delivery(self, delivery: D) -> None:
        self._deliveries.record(delivery)

    def deliveries(self) -> list[D]:
        return self._deliveries.items()

    def wait_for_deliveries(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` delivery attempts are recorded; False on timeout."""
        return self._deliveries.wait_for(count, timeout)
