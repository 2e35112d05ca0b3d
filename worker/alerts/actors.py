"""The reconcile and alert-delivery actors: thin shells over ``worker.alerts.reconcile`` and
``worker.alerts.sinks``, on their own queues so a failing sink never holds up syncing.

``reconcile(full)`` commits, then logs each notification and sends one ``deliver_alert``
message per HTTP sink; ``deliver_alert(alert_id, revision, sink)`` sends that revision at most
once (success is recorded per alert, revision and sink) and retries with backoff until then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import dramatiq
import httpx

from ledger.alerts.outbox import Outbox
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.alerts.sinks import (
    DeliveryFailed,
    DeliveryRefused,
    LogSink,
    Sink,
    deliver,
    deliveries_due,
    http_sinks,
    new_http_client,
)
from worker.broker import register_shutdown
from worker.config import Settings
from worker.logging import get_logger
from worker.runtime import Runtime, current, reconcile_plans
from worker.sync.actors import ALERTS_QUEUE, RECONCILE_QUEUE

log = get_logger(__name__)

RECONCILE_OPTIONS: dict[str, Any] = {
    "max_retries": 5,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 60 * 60_000,  # a full reconcile of a large ledger takes minutes
}
DELIVERY_OPTIONS: dict[str, Any] = {
    "max_retries": 10,
    "min_backoff": 1_000,
    "max_backoff": 300_000,  # ~15 min of retries in all, then the outbox takes over
    "time_limit": 60_000,
    "throws": (DeliveryRefused,),
}


@dataclass(frozen=True)
class AlertActors:
    reconcile: dramatiq.Actor[Any, Any]
    deliver_alert: dramatiq.Actor[Any, Any]


class _Sinks:
    """The HTTP sinks of the current settings over one shared client, closed at shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._client: httpx.Client | None = None
        self._sinks: dict[str, Sink] = {}

    def get(self, settings: Settings) -> dict[str, Sink]:
        with self._lock:
            if settings is not self._settings:
                self._close()
                self._client = new_http_client()
                self._sinks = http_sinks(settings, self._client)
                self._settings = settings
            return self._sinks

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self._settings, self._sinks = None, None, {}


def declare_alert_actors(
    broker: dramatiq.Broker,
    runtime: Callable[[], Runtime] = current,
    *,
    delivery_min_backoff_ms: int | None = None,
) -> AlertActors:
    sinks = _Sinks()
    with suppress(LookupError):  # a broker not built by setup_broker manages no shutdown
        register_shutdown(sinks.close, broker)
    log_sink = LogSink()
    # One reconcile at a time in this process: two (a scheduled one and a sync's) only race
    # for the cursor and plan each other's chunks again. Across processes the cursor's
    # compare-and-set still decides; the later run finds what the first left.
    one_at_a_time = threading.Lock()

    def reconcile_fn(full: bool = False) -> None:
        """Reconcile what changed (or everything), then announce what the commit changed."""
        rt = runtime()
        plans = reconcile_plans(rt.settings)
        context = ReconcileContext.from_settings(rt.store, rt.settings, rt.now, plans)
        with one_at_a_time:
            report = reconcile(context, full=full)
        for note in report.notifications:
            log_sink.send(note)
        outbox = Outbox(rt.store.engine)
        for alert_id, revision, sink in deliveries_due(
            report.notifications, sinks.get(rt.settings), outbox, rt.now()
        ):
            deliver_alert.send(alert_id, revision, sink)

    def deliver_alert_fn(alert_id: int, revision: int, sink: str) -> None:
        """Send one revision of one alert to one sink, unless it already got it."""
        rt = runtime()
        target = sinks.get(rt.settings).get(sink)
        if target is None:
            log.warning("alert_sink_not_configured", sink=sink, alert_id=alert_id)
            return
        try:
            deliver(Outbox(rt.store.engine), target, alert_id, revision, rt.now())
        except DeliveryFailed as exc:
            log.warning(
                "alert_delivery_failed",
                alert_id=alert_id,
                revision=revision,
                sink=sink,
                error=str(exc),
            )
            if exc.retry_after is not None:
                raise dramatiq.Retry(str(exc), delay=int(exc.retry_after * 1000)) from None
            raise
        except DeliveryRefused as exc:
            log.error("alert_delivery_refused", alert_id=alert_id, sink=sink, error=str(exc))
            raise

    delivery = dict(DELIVERY_OPTIONS)
    if delivery_min_backoff_ms is not None:
        delivery["min_backoff"] = delivery_min_backoff_ms
    reconcile_actor = dramatiq.actor(
        actor_name="reconcile", queue_name=RECONCILE_QUEUE, broker=broker, **RECONCILE_OPTIONS
    )(reconcile_fn)
    deliver_alert = dramatiq.actor(
        actor_name="deliver_alert", queue_name=ALERTS_QUEUE, broker=broker, **delivery
    )(deliver_alert_fn)
    return AlertActors(reconcile_actor, deliver_alert)
