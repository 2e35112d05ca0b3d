"""What the deployment-level gauges read at scrape time: the ledger's sync and alert state with
the alerts' ages and recovery's backlog, and the broker's queues."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from ledger.alerts.state import OPEN
from ledger.alerts.store import AlertStore
from ledger.storage.store import LedgerStore
from worker.broker import in_flight
from worker.metrics import LedgerState, QueueState
from worker.sync.recovery_notes import RecoveryNotes
from worker.sync.status import ledger_state


def deployment_state(store: LedgerStore) -> LedgerState:
    """``ledger_state`` plus the oldest open alert per rule and recovery's pending follow-ups."""
    state = ledger_state(store)
    oldest: dict[str, datetime] = {}
    for alert in AlertStore(store.engine).list_alerts((OPEN,)):
        seen = oldest.get(alert.rule)
        oldest[alert.rule] = alert.first_seen_at if seen is None else min(seen, alert.first_seen_at)
    notes = RecoveryNotes(store.engine).notes()
    pending = {source: note.pending_follow_ups for source, note in notes.items()}
    return dataclasses.replace(state, oldest_open=oldest, follow_ups_pending=pending)


def _sent_at(encoded: bytes | str | None) -> datetime | None:
    if encoded is None:
        return None
    message = dramatiq.Message.decode(encoded.encode() if isinstance(encoded, str) else encoded)
    return datetime.fromtimestamp(message.message_timestamp / 1000, UTC)


def queue_state(broker: dramatiq.Broker, queues: Iterable[str]) -> list[QueueState]:
    """Each queue's pending messages, dead letters and oldest waiting message."""
    found = []
    for queue in queues:
        pending = in_flight(broker, queue)
        if isinstance(broker, RedisBroker):
            # dramatiq's Redis layout: ns:Q (ids, oldest first), ns:Q.msgs, ns:Q.XQ (dead).
            key, client = f"{broker.namespace}:{queue}", broker.client
            dead = int(client.zcard(f"{key}.XQ"))
            head = client.lindex(key, 0)
            oldest = _sent_at(client.hget(f"{key}.msgs", head) if head is not None else None)
        elif isinstance(broker, StubBroker):
            dead = len(broker.dead_letters_by_queue.get(queue, ()))
            waiting = list(broker.queues[queue].queue) if queue in broker.queues else []
            oldest = _sent_at(waiting[0] if waiting else None)
        else:
            raise TypeError(f"cannot inspect queues of {type(broker).__name__}")
        found.append(QueueState(queue, pending, dead, oldest))
    return found
