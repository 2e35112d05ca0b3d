"""The alert outbox: announced revisions (``alert_event`` rows with ``notify``) and their delivery
to each sink, recorded per (alert, revision, sink) so a retried message never delivers twice
after a success, and a lost message is found again and re-sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine

from ledger import jsonx
from ledger.alerts.rows import DELIVERY, EVENT, insert_ignore
from ledger.alerts.store import Notification
from ledger.storage.engine import read_only


@dataclass(frozen=True)
class Pending:
    alert_id: int
    revision: int
    sink: str


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = read_only(engine)

    def announcement(self, alert_id: int, revision: int) -> Notification | None:
        """What revision ``revision`` announced (its event and the alert as of then)."""
        stmt = select(EVENT.c.kind, EVENT.c.body).where(
            EVENT.c.alert_id == alert_id, EVENT.c.revision == revision, EVENT.c.notify.is_(True)
        )
        with self._reader.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return Notification(alert_id, revision, row.kind, jsonx.loads(row.body))

    def delivered(self, alert_id: int, revision: int, sink: str) -> bool:
        stmt = select(DELIVERY.c.delivered_at).where(
            DELIVERY.c.alert_id == alert_id,
            DELIVERY.c.revision == revision,
            DELIVERY.c.sink == sink,
        )
        with self._reader.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none() is not None

    def record(
        self, alert_id: int, revision: int, sink: str, now: datetime, error: str | None
    ) -> None:
        """One attempt: ``error`` None means delivered."""
        key = {"alert_id": alert_id, "revision": revision, "sink": sink}
        with self.engine.begin() as conn:
            insert_ignore(conn, DELIVERY, [{**key, "attempts": 0, "updated_at": now}])
            values: dict[str, Any] = {
                "attempts": DELIVERY.c.attempts + 1,
                "last_error": error[:2000] if error else None,
                "updated_at": now,
            }
            if error is None:
                values["delivered_at"] = now
            conn.execute(
                update(DELIVERY)
                .where(*(DELIVERY.c[name] == value for name, value in key.items()))
                .where(DELIVERY.c.delivered_at.is_(None))
                .values(**values)
            )

    def undelivered(
        self,
        sinks: Iterable[str],
        now: datetime,
        *,
        quiet_for: timedelta,
        horizon: timedelta,
        limit: int = 500,
    ) -> list[Pending]:
        """Announcements younger than ``horizon`` that a sink has not received, with nothing
        attempted for ``quiet_for`` (longer than a delivery's own retries take)."""
        found: list[Pending] = []
        cutoff = now - quiet_for
        with self._reader.connect() as conn:
            for sink in sorted(set(sinks)):
                stmt = (
                    select(EVENT.c.alert_id, EVENT.c.revision)
                    .outerjoin(
                        DELIVERY,
                        and_(
                            DELIVERY.c.alert_id == EVENT.c.alert_id,
                            DELIVERY.c.revision == EVENT.c.revision,
                            DELIVERY.c.sink == sink,
                        ),
                    )
                    .where(EVENT.c.notify.is_(True), EVENT.c.at > now - horizon)
                    .where(DELIVERY.c.delivered_at.is_(None))
                    .where(
                        (DELIVERY.c.updated_at.is_(None) & (EVENT.c.at <= cutoff))
                        | (DELIVERY.c.updated_at <= cutoff)
                    )
                    .order_by(EVENT.c.id)
                    .limit(limit)
                )
                found += [Pending(a, r, sink) for a, r in conn.execute(stmt)]
        return found
