"""Alert values ↔ alert rows: the table handles, and the conversions that keep amounts exact
(decimal text in, ``Decimal`` out) and snapshot seqs as a JSON array.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger import jsonx
from ledger.alerts.state import Alert
from ledger.alerts.suspense import Suspense
from ledger.alerts.tables import Alert as AlertRow
from ledger.alerts.tables import (
    AlertDelivery,
    AlertEvent,
    ReconcileCursor,
    ReconcileLink,
    ReconcileWait,
)
from ledger.money import fmt
from ledger.reconcile.incidents import check_of
from ledger.reconcile.rules import Finding
from ledger.storage.tables import table_of

ALERT = table_of(AlertRow)
EVENT = table_of(AlertEvent)
DELIVERY = table_of(AlertDelivery)
CURSOR = table_of(ReconcileCursor)
LINK = table_of(ReconcileLink)
WAIT = table_of(ReconcileWait)
AMOUNTS = ("expected", "actual", "difference", "tolerance")
MAX_IN = 500  # values per IN (...) list, well under SQLite's variable limit
_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))


def chunks(values: Sequence[Any], size: int = MAX_IN) -> Iterator[Sequence[Any]]:
    """``values`` in slices of at most ``size`` (for ``IN (...)`` lists)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose key exists (both dialects)."""
    if rows:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows))


def to_alert(row: RowMapping | Mapping[str, Any]) -> Alert:
    values = {name: row["check_name" if name == "check" else name] for name in _FIELDS}
    for name in AMOUNTS:
        values[name] = Decimal(values[name])
    values["snapshot_seqs"] = tuple(jsonx.loads(values["snapshot_seqs"]))
    values["evidence"] = tuple(jsonx.loads(values["evidence"] or "[]"))
    values["related"] = tuple(jsonx.loads(values["related"] or "[]"))
    return Alert(**values)


def to_columns(alert: Alert, now: datetime) -> dict[str, Any]:
    """The row of ``alert`` (without its id), stamped ``updated_at=now``."""
    values = {name: getattr(alert, name) for name in _FIELDS if name != "id"}
    values["check_name"] = values.pop("check")
    for name in AMOUNTS:
        values[name] = fmt(values[name])
    values["snapshot_seqs"] = jsonx.dumps(list(alert.snapshot_seqs))
    values["evidence"] = jsonx.dumps([dict(check) for check in alert.evidence])
    values["related"] = jsonx.dumps(list(alert.related))
    values["updated_at"] = now
    return values


def evidence_of(finding: Finding, suspense: Suspense | None) -> dict[str, Any]:
    """The ``Alert`` fields a finding sets (on open and on update)."""
    return {
        "fingerprint": finding.fingerprint(),
        "currency": finding.currency,
        "expected": finding.expected,
        "actual": finding.actual,
        "difference": finding.difference,
        "tolerance": finding.tolerance,
        "detail": finding.detail,
        "snapshot_seqs": tuple(finding.snapshot_seqs),
        "suspense_journal_seq": suspense[0] if suspense else None,
        "suspense_journal_key": suspense[1] if suspense else None,
        "severity": finding.severity or "warn",
        "evidence": finding.evidence or (check_of(finding),),
        "related": finding.related,
    }
