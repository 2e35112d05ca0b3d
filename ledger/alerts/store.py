"""Persisted alerts: read them, apply the state machine's actions, and let a person ack/resolve.

One ``commit`` per reconcile chunk writes the actions, the reconcile indexes and the cursor in
one transaction, after a compare-and-set on the cursor's ``version``: two reconcile runs can
never both commit work planned from the same state. Updates are conditional on the revision
and status that were read, so a person's ack in between makes the commit retry, never lose it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ledger import jsonx
from ledger.alerts.resolution import Resolution
from ledger.alerts.rows import (
    ALERT,
    CURSOR,
    EVENT,
    LINK,
    WAIT,
    chunks,
    evidence_of,
    insert_ignore,
    to_alert,
    to_columns,
)
from ledger.alerts.state import (
    ACKNOWLEDGED,
    BY_PERSON,
    BY_RECONCILE,
    CORRECTED,
    EVENT_OF,
    OPEN,
    RESOLVED,
    Action,
    Alert,
    AlertKey,
    key_of,
)
from ledger.alerts.suspense import Suspense
from ledger.errors import LedgerError
from ledger.storage.engine import read_only

CURSOR_NAME = "ledger"


class AlertNotFound(LedgerError):
    """No alert has this id."""


class AlertStateError(LedgerError):
    """The alert cannot make this transition (e.g. acknowledging a resolved alert)."""


class ReconcileConflict(LedgerError):
    """Another reconcile (or a person) changed the state this commit was planned from."""


@dataclass(frozen=True)
class Cursor:
    last_seq: int
    version: int
    last_full_at: datetime | None = None


@dataclass(frozen=True)
class Notification:
    """One announced change: receivers dedupe on (alert_id, revision)."""

    alert_id: int
    revision: int
    event: str  # opened | updated | resolved
    alert: Mapping[str, Any]  # Alert.to_json() as of this revision


@dataclass(frozen=True)
class Event:
    """One row of an alert's history: what happened, when, and the alert as of then."""

    revision: int
    kind: str
    at: datetime
    note: str | None
    alert: Mapping[str, Any]


@dataclass(frozen=True)
class Filter:
    """Which alerts a person lists: by status, rule, source, subject, last seen since."""

    statuses: Collection[str] = (OPEN, ACKNOWLEDGED)
    rules: Collection[str] = ()
    sources: Collection[str] = ()
    subjects: Collection[str] = ()
    since: datetime | None = None


@dataclass(frozen=True)
class Commit:
    """Everything one reconcile chunk writes; ``version`` is the cursor version it read."""

    version: int
    now: datetime
    actions: Sequence[Action] = ()
    suspense: Mapping[AlertKey, Suspense] = field(default_factory=dict)
    links: Collection[tuple[str, str, str, str]] = ()  # (source, link, from_id, to_id)
    waiting: Collection[tuple[str, str]] = ()  # (source, subject): the clock can break it
    settled: Collection[tuple[str, str]] = ()  # (source, subject): evaluated, and not waiting
    last_seq: int | None = None
    full: bool = False
    stats: Mapping[str, int] = field(default_factory=dict)  # counted once committed

    @property
    def empty(self) -> bool:
        return (
            not (self.actions or self.links or self.waiting or self.settled or self.full)
            and self.last_seq is None
        )


class AlertStore:
    """Reads and writes the alert and reconcile tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = read_only(engine)

    # --- reading

    def cursor(self) -> Cursor:
        with self._reader.connect() as conn:
            row = conn.execute(select(CURSOR).where(CURSOR.c.name == CURSOR_NAME)).one_or_none()
        if row is None:
            return Cursor(0, 0)
        return Cursor(row.last_seq, row.version, row.last_full_at)

    def alerts_for(self, source: str, subject_ids: Iterable[str]) -> list[Alert]:
        """Every alert (history included) about these subjects."""
        found: list[Alert] = []
        with self._reader.connect() as conn:
            for ids in chunks(sorted(set(subject_ids))):
                stmt = select(ALERT).where(ALERT.c.source == source, ALERT.c.subject_id.in_(ids))
                found += [to_alert(row) for row in conn.execute(stmt).mappings()]
        return found

    def linked(self, source: str, link: str, from_ids: Iterable[str]) -> dict[str, set[str]]:
        """from_id → to_ids of one reverse-lookup ``link`` (see ``ReconcileLink``)."""
        found: dict[str, set[str]] = {}
        with self._reader.connect() as conn:
            for ids in chunks(sorted(set(from_ids))):
                stmt = select(LINK.c.from_id, LINK.c.to_id).where(
                    LINK.c.source == source, LINK.c.link == link, LINK.c.from_id.in_(ids)
                )
                for from_id, to_id in conn.execute(stmt):
                    found.setdefault(from_id, set()).add(to_id)
        return found

    def waiting(self) -> dict[str, list[str]]:
        """source → subjects the clock can break (the periodic sweep)."""
        found: dict[str, list[str]] = {}
        with self._reader.connect() as conn:
            for source, subject_id in conn.execute(
                select(WAIT.c.source, WAIT.c.subject_id).order_by(WAIT.c.source, WAIT.c.subject_id)
            ):
                found.setdefault(source, []).append(subject_id)
        return found

    def list_alerts(
        self, statuses: Iterable[str] = (OPEN, ACKNOWLEDGED), where: Filter | None = None
    ) -> list[Alert]:
        chosen = where or Filter(tuple(statuses))
        stmt = select(ALERT).where(ALERT.c.status.in_(list(chosen.statuses)))
        for column, values in (
            (ALERT.c.rule, chosen.rules),
            (ALERT.c.source, chosen.sources),
            (ALERT.c.subject_id, chosen.subjects),
        ):
            if values:
                stmt = stmt.where(column.in_(sorted(values)))
        if chosen.since is not None:
            stmt = stmt.where(ALERT.c.last_seen_at >= chosen.since)
        with self._reader.connect() as conn:
            return [to_alert(row) for row in conn.execute(stmt.order_by(ALERT.c.id)).mappings()]

    def history(self, alert_id: int) -> list[Event]:
        """Every change of the alert, oldest first (``alert_event``)."""
        self.get(alert_id)
        stmt = select(EVENT).where(EVENT.c.alert_id == alert_id).order_by(EVENT.c.id)
        with self._reader.connect() as conn:
            return [
                Event(row.revision, row.kind, row.at, row.note, jsonx.loads(row.body))
                for row in conn.execute(stmt)
            ]

    def live_counts(self) -> dict[tuple[str, str], int]:
        """(rule, status) → how many alerts are open or acknowledged."""
        stmt = (
            select(ALERT.c.rule, ALERT.c.status, func.count())
            .where(ALERT.c.status.in_((OPEN, ACKNOWLEDGED)))
            .group_by(ALERT.c.rule, ALERT.c.status)
        )
        with self._reader.connect() as conn:
            return {(rule, status): int(n) for rule, status, n in conn.execute(stmt)}

    def get(self, alert_id: int) -> Alert:
        with self._reader.connect() as conn:
            row = conn.execute(select(ALERT).where(ALERT.c.id == alert_id)).mappings().first()
        if row is None:
            raise AlertNotFound(f"no alert with id {alert_id}")
        return to_alert(row)

    # --- reconcile

    def commit(self, work: Commit) -> list[Notification]:
        """Apply one chunk atomically; ``ReconcileConflict`` if the state moved meanwhile."""
        try:
            with self.engine.begin() as conn:
                self._claim(conn, work)
                changed = self._insert_opened(
                    conn, [self._next(action, work.suspense) for action in work.actions]
                )
                for action, new in changed:
                    if action.alert is not None:
                        self._save(conn, action.alert, new, action.at)
                notified = [(action, new) for action, new in changed if action.notifies]
                events = [
                    _event_row(new, EVENT_OF[action.kind], action.at, notify=True)
                    for action, new in notified
                ]
                if events:  # one statement for the chunk's events, in the actions' order
                    conn.execute(insert(EVENT), events)
                self._index(conn, work)
        except IntegrityError as exc:  # a live alert inserted by a concurrent run
            raise ReconcileConflict(f"alert inserted concurrently ({exc.orig})") from None
        return [
            Notification(new.id, new.revision, EVENT_OF[action.kind], new.to_json())
            for action, new in notified
        ]

    def _claim(self, conn: Connection, work: Commit) -> None:
        values: dict[str, Any] = {"version": work.version + 1, "updated_at": work.now}
        if work.last_seq is not None:
            values["last_seq"] = work.last_seq
        if work.full:
            values["last_full_at"] = work.now
        if work.version == 0:
            insert_ignore(
                conn,
                CURSOR,
                [{"name": CURSOR_NAME, "last_seq": 0, "version": 0, "updated_at": work.now}],
            )
        moved = conn.execute(
            update(CURSOR)
            .where(CURSOR.c.name == CURSOR_NAME, CURSOR.c.version == work.version)
            .values(**values)
        ).rowcount
        if moved != 1:
            raise ReconcileConflict("another reconcile committed first")

    @staticmethod
    def _next(action: Action, suspense: Mapping[AlertKey, Suspense]) -> tuple[Action, Alert]:
        """The alert as ``action`` leaves it (id 0 for a new one, set when it is inserted)."""
        now, finding, current = action.at, action.finding, action.alert
        evidence = evidence_of(finding, suspense.get(key_of(finding))) if finding else {}
        if current is None:
            assert finding is not None
            new = Alert(
                id=0,
                source=finding.source,
                rule=finding.rule,
                subject_id=finding.subject_id,
                check=finding.check,
                status=OPEN,
                revision=1,
                first_seen_at=now,
                last_seen_at=now,
                **evidence,
            )
        elif action.kind == "touch":  # same primary numbers: supporting evidence refreshed
            quiet = {k: evidence[k] for k in ("detail", "evidence", "related", "snapshot_seqs")}
            new = dataclasses.replace(
                current, last_seen_at=now, severity=evidence["severity"], **quiet
            )
        elif action.kind == "update":
            new = dataclasses.replace(
                current, **evidence, status=OPEN, revision=action.revision, last_seen_at=now
            )
        else:  # resolve
            new = dataclasses.replace(
                current,
                status=RESOLVED,
                revision=action.revision,
                resolved_at=now,
                resolved_by=BY_RECONCILE,
                resolution=CORRECTED,  # the check passes again: the data was corrected
            )
        return action, new

    @staticmethod
    def _insert_opened(
        conn: Connection, changed: list[tuple[Action, Alert]]
    ) -> list[tuple[Action, Alert]]:
        """Insert the new alerts in one statement: ``changed`` with their ids set."""
        opened = [new for action, new in changed if action.alert is None]
        if not opened:
            return changed
        # executemany with RETURNING, ids in the rows' order (SQLAlchemy's insertmanyvalues)
        stmt = insert(ALERT).returning(ALERT.c.id, sort_by_parameter_order=True)
        rows = [to_columns(alert, alert.first_seen_at) for alert in opened]
        ids = iter(conn.execute(stmt, rows).scalars().all())
        return [
            (action, new if action.alert else dataclasses.replace(new, id=next(ids)))
            for action, new in changed
        ]

    def _save(self, conn: Connection, old: Alert, new: Alert, now: datetime) -> None:
        changed = conn.execute(
            update(ALERT)
            .where(
                ALERT.c.id == old.id,
                ALERT.c.revision == old.revision,
                ALERT.c.status == old.status,
            )
            .values(**to_columns(new, now))
        ).rowcount
        if changed != 1:
            raise ReconcileConflict(f"alert {old.id} changed while reconcile planned")

    def _index(self, conn: Connection, work: Commit) -> None:
        links = sorted(set(work.links))
        insert_ignore(
            conn,
            LINK,
            [{"source": s, "link": k, "from_id": f, "to_id": t} for s, k, f, t in links],
        )
        waiting = sorted(set(work.waiting))
        insert_ignore(
            conn, WAIT, [{"source": s, "subject_id": i, "since": work.now} for s, i in waiting]
        )
        settled: dict[str, list[str]] = {}
        for source, subject_id in sorted(set(work.settled)):
            settled.setdefault(source, []).append(subject_id)
        for source, subject_ids in settled.items():
            for ids in chunks(subject_ids):
                conn.execute(
                    WAIT.delete().where(WAIT.c.source == source, WAIT.c.subject_id.in_(ids))
                )

    # --- people

    def acknowledge(self, alert_id: int, note: str, now: datetime) -> Alert:
        """An open alert becomes acknowledged (acknowledging twice only updates the note)."""
        return self._by_person(alert_id, note, now, ACKNOWLEDGED, "acknowledged")

    def resolve(
        self, alert_id: int, note: str, now: datetime, resolution: Resolution | None = None
    ) -> Alert:
        """A live alert becomes resolved by a person, with how (``explained`` unless said);
        the same evidence will not reopen it."""
        how = resolution or Resolution("explained")
        return self._by_person(alert_id, note, now, RESOLVED, "resolved_by_person", how)

    def acknowledge_many(self, alert_ids: Sequence[int], note: str, now: datetime) -> list[Alert]:
        """Acknowledge each alert, all or none (one transaction)."""
        return self._many(alert_ids, note, now, ACKNOWLEDGED, "acknowledged", None)

    def resolve_many(
        self, alert_ids: Sequence[int], note: str, now: datetime, resolution: Resolution
    ) -> list[Alert]:
        """Resolve each alert the same way, all or none (one transaction)."""
        return self._many(alert_ids, note, now, RESOLVED, "resolved_by_person", resolution)

    def _by_person(
        self,
        alert_id: int,
        note: str,
        now: datetime,
        status: str,
        event: str,
        resolution: Resolution | None = None,
    ) -> Alert:
        return self._many([alert_id], note, now, status, event, resolution)[0]

    def _many(
        self,
        alert_ids: Sequence[int],
        note: str,
        now: datetime,
        status: str,
        event: str,
        resolution: Resolution | None,
    ) -> list[Alert]:
        done: list[Alert] = []
        with self.engine.begin() as conn:
            for alert_id in dict.fromkeys(alert_ids):
                row = conn.execute(select(ALERT).where(ALERT.c.id == alert_id)).mappings().first()
                if row is None:
                    raise AlertNotFound(f"no alert with id {alert_id}")
                current = to_alert(row)
                if not current.live:
                    raise AlertStateError(f"alert {alert_id} is already resolved")
                changes: dict[str, Any] = {"status": status, "note": note}
                if status == RESOLVED and resolution is not None:
                    changes |= {
                        "resolved_at": now,
                        "resolved_by": BY_PERSON,
                        "resolution": resolution.kind,
                        "resolution_account": resolution.account,
                    }
                new = dataclasses.replace(current, **changes)
                self._save(conn, current, new, now)
                conn.execute(insert(EVENT).values(**_event_row(new, event, now, notify=False)))
                done.append(new)
        return done


def _event_row(alert: Alert, kind: str, now: datetime, *, notify: bool) -> dict[str, Any]:
    """The ``alert_event`` row of ``alert``'s change ``kind``."""
    return {
        "alert_id": alert.id,
        "revision": alert.revision,
        "kind": kind,
        "at": now,
        "notify": notify,
        "note": alert.note if not notify else None,
        "body": jsonx.dumps(alert.to_json()),
    }
