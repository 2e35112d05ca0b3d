"""Tables of reconciliation state: alerts, their event log and deliveries, and reconcile's cursor
and small indexes. Mutable bookkeeping beside the immutable ledger: every alert change also
appends an ``alert_event`` row, so the history of an alert is never lost.

Amounts are stored as exact decimal text (``ledger.money.fmt``), not NUMERIC: a finding
may compare a fee sent with more places than the ledger posts, and evidence must keep every digit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKeyConstraint, Index, String, Text, text
from sqlmodel import Field, SQLModel

from ledger.storage.tables import SEQ
from ledger.storage.types import UTCDateTime

# Live alerts (not resolved) are unique per (source, rule, subject, check); history is not.
LIVE = text("status <> 'resolved'")


class Alert(SQLModel, table=True):
    """One alert: a broken check on one subject, with the evidence of its latest revision."""

    __tablename__ = "alert"
    __table_args__ = (
        Index(
            "uq_alert_live",
            "source",
            "rule",
            "subject_id",
            "check_name",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index("ix_alert_subject", "source", "subject_id"),
        Index("ix_alert_status", "status", "id"),
    )

    id: int | None = Field(default=None, sa_type=SEQ, primary_key=True)
    source: str = Field(sa_type=String(32))
    rule: str = Field(sa_type=String(64))
    subject_id: str = Field(sa_type=String(128))
    check_name: str = Field(sa_type=String(64))
    status: str = Field(sa_type=String(16))  # open | acknowledged | resolved
    revision: int  # bumped by every change that is announced (opened, updated, resolved)
    fingerprint: str = Field(sa_type=String(64))
    currency: str = Field(sa_type=String(32).with_variant(String(80), "postgresql"))  # see 0007
    expected: str = Field(sa_type=Text)
    actual: str = Field(sa_type=Text)
    difference: str = Field(sa_type=Text)
    tolerance: str = Field(sa_type=Text)
    detail: str = Field(sa_type=Text)
    snapshot_seqs: str = Field(sa_type=Text)  # JSON array of ints
    suspense_journal_seq: int | None = Field(default=None, sa_type=BigInteger)
    suspense_journal_key: str | None = Field(default=None, sa_type=String(255))
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, sa_type=String(16))  # reconcile | person
    note: str | None = Field(default=None, sa_type=Text)
    # An incident (0008): its severity, every failing check, the other subjects involved, and
    # how a person resolved it (corrected | write-off | explained, and the write-off account).
    severity: str = Field(default="warn", sa_type=String(16))
    evidence: str = Field(default="[]", sa_type=Text)  # JSON array of checks
    related: str = Field(default="[]", sa_type=Text)  # JSON array of subject ids
    resolution: str | None = Field(default=None, sa_type=String(16))
    resolution_account: str | None = Field(default=None, sa_type=String(255))


class AlertEvent(SQLModel, table=True):
    """One change of one alert; ``notify`` rows are the outbox, ``body`` what was announced."""

    __tablename__ = "alert_event"
    __table_args__ = (
        ForeignKeyConstraint(["alert_id"], ["alert.id"], name="fk_alert_event_alert"),
        Index("ix_alert_event_alert", "alert_id", "revision"),
        Index("ix_alert_event_outbox", "notify", "at"),
    )

    id: int | None = Field(default=None, sa_type=SEQ, primary_key=True)
    alert_id: int = Field(sa_type=BigInteger)
    revision: int
    kind: str = Field(sa_type=String(32))  # opened | updated | resolved | acknowledged | …
    at: datetime = Field(sa_type=UTCDateTime)
    notify: bool = Field(sa_type=Boolean)
    note: str | None = Field(default=None, sa_type=Text)
    body: str = Field(sa_type=Text)  # JSON: the alert as of this event


class AlertDelivery(SQLModel, table=True):
    """Delivery of one announced revision to one sink; ``delivered_at`` set once it succeeded."""

    __tablename__ = "alert_delivery"

    alert_id: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    revision: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    sink: str = Field(sa_type=String(32), primary_key=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ReconcileCursor(SQLModel, table=True):
    """The last snapshot seq reconciled; ``version`` is bumped by every reconcile commit, so two
    runs at once cannot both commit work planned from the same state (compare-and-set)."""

    __tablename__ = "reconcile_cursor"

    name: str = Field(sa_type=String(32), primary_key=True)
    last_seq: int = Field(sa_type=BigInteger)
    version: int = Field(sa_type=BigInteger)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    last_full_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReconcileLink(SQLModel, table=True):
    """Reverse lookups the rules need, kept by reconcile so it never scans payloads: e.g.
    ``tx-order`` (a transaction → the orders naming it), ``payment-refund`` (a payment → its
    refunds)."""

    __tablename__ = "reconcile_link"

    source: str = Field(sa_type=String(32), primary_key=True)
    link: str = Field(sa_type=String(32), primary_key=True)
    from_id: str = Field(sa_type=String(128), primary_key=True)
    to_id: str = Field(sa_type=String(128), primary_key=True)


class ReconcileWait(SQLModel, table=True):
    """Subjects the clock alone can break (a refunded order with no refund-info yet): the
    periodic sweep re-judges just these."""

    __tablename__ = "reconcile_wait"

    source: str = Field(sa_type=String(32), primary_key=True)
    subject_id: str = Field(sa_type=String(128), primary_key=True)
    since: datetime = Field(sa_type=UTCDateTime)


ALERT_TABLES = (
    "alert",
    "alert_event",
    "alert_delivery",
    "reconcile_cursor",
    "reconcile_link",
    "reconcile_wait",
)
