"""The alert state machine: stored alerts + fresh findings for the checks just evaluated → actions.

Pure: no session, no clock (``now`` is passed in), no logging. An alert is keyed by (source,
rule, subject, check); its evidence is the finding's fingerprint. Lifecycle::

    (none) ──finding──▶ open ──ack (person)──▶ acknowledged
      ▲                  │  ▲                      │
      │   evidence changes: update, revision+1, back to open (a person acked other numbers)
      │                  ▼                         ▼
      └── a new alert ◀─ resolved ◀── check passes (reconcile) or resolve (person, with note)

Announced changes (``open``, ``update``, ``resolve``) bump the revision and notify once;
the same evidence again is a ``touch`` (last seen, no notification). After a person resolved an
alert, the same evidence stays resolved; different evidence opens a new alert. After reconcile
resolved one, any finding opens a new alert: the data broke again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ledger.chain import iso_utc
from ledger.money import fmt
from ledger.reconcile.rules import Finding

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
# How a person closed an alert: the gateway fixed the data, the difference was written off to
# an account, or it was explained (nothing to post).
CORRECTED, WRITE_OFF, EXPLAINED = "corrected", "write-off", "explained"
RESOLUTIONS = (CORRECTED, WRITE_OFF, EXPLAINED)
BY_RECONCILE, BY_PERSON = "reconcile", "person"

AlertKey = tuple[str, str, str, str]  # (source, rule, subject_id, check)
Scope = tuple[str, str, str]  # (source, rule, subject_id): a rule evaluated on a subject
ActionKind = Literal["open", "update", "touch", "resolve"]
EVENT_OF: Mapping[str, str] = {"open": "opened", "update": "updated", "resolve": "resolved"}


@dataclass(frozen=True)
class Alert:
    """One stored alert as read back."""

    id: int
    source: str
    rule: str
    subject_id: str
    check: str
    status: str
    revision: int
    fingerprint: str
    currency: str
    expected: Decimal
    actual: Decimal
    difference: Decimal
    tolerance: Decimal
    detail: str
    snapshot_seqs: tuple[int, ...]
    first_seen_at: datetime
    last_seen_at: datetime
    suspense_journal_seq: int | None = None
    suspense_journal_key: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str | None = None
    severity: str = "warn"
    evidence: tuple[Mapping[str, Any], ...] = field(default=())
    related: tuple[str, ...] = ()
    resolution: str | None = None
    resolution_account: str | None = None

    @property
    def key(self) -> AlertKey:
        return (self.source, self.rule, self.subject_id, self.check)

    @property
    def live(self) -> bool:
        return self.status != RESOLVED

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (``tally alerts --format json``, webhook ``alert``)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "source": self.source,
            "subject_id": self.subject_id,
            "check": self.check,
            "currency": self.currency,
            "expected": fmt(self.expected),
            "actual": fmt(self.actual),
            "difference": fmt(self.difference),
            "tolerance": fmt(self.tolerance),
            "status": self.status,
            "revision": self.revision,
            "first_seen_at": iso_utc(self.first_seen_at),
            "last_seen_at": iso_utc(self.last_seen_at),
            "resolved_at": iso_utc(self.resolved_at) if self.resolved_at else None,
            "resolved_by": self.resolved_by,
            "snapshot_seqs": list(self.snapshot_seqs),
            "suspense_journal_seq": self.suspense_journal_seq,
            "suspense_journal_key": self.suspense_journal_key,
            "detail": self.detail,
            "note": self.note,
            "fingerprint": self.fingerprint,
            "severity": self.severity,
            "evidence": [dict(check) for check in self.evidence],
            "related": list(self.related),
            "resolution": self.resolution,
            "resolution_account": self.resolution_account,
        }


def key_of(finding: Finding) -> AlertKey:
    return (finding.source, finding.rule, finding.subject_id, finding.check)


@dataclass(frozen=True)
class Action:
    """What to do to the store: ``finding`` is the new evidence (None for ``resolve``),
    ``alert`` the stored alert acted on (None for ``open``)."""

    kind: ActionKind
    at: datetime
    finding: Finding | None = None
    alert: Alert | None = None

    @property
    def notifies(self) -> bool:
        return self.kind != "touch"

    @property
    def revision(self) -> int:
        """The alert's revision after this action."""
        if self.alert is None:
            return 1
        return self.alert.revision + (1 if self.notifies else 0)


def plan(
    alerts: Iterable[Alert],
    findings: Iterable[Finding],
    scopes: Iterable[Scope],
    now: datetime,
) -> list[Action]:
    """The actions that bring the stored ``alerts`` in line with ``findings``.

    ``scopes`` lists every (source, rule, subject) just evaluated: a live alert in scope with no
    finding for its key is resolved; alerts outside the scopes are left alone. ``alerts`` may
    hold history; only the latest alert (highest id) of each key counts.
    """
    latest: dict[AlertKey, Alert] = {}
    for alert in alerts:
        if alert.key not in latest or alert.id > latest[alert.key].id:
            latest[alert.key] = alert
    fresh: dict[AlertKey, Finding] = {}
    for finding in sorted(findings, key=lambda f: (key_of(f), f.fingerprint())):
        fresh[key_of(finding)] = finding  # one finding per key; ties settle deterministically
    actions: list[Action | None] = [
        _for_finding(latest.get(key), finding, now) for key, finding in sorted(fresh.items())
    ]
    in_scope = set(scopes)
    for key, alert in sorted(latest.items()):
        if alert.live and key not in fresh and key[:3] in in_scope:
            actions.append(Action("resolve", now, alert=alert))
    return [action for action in actions if action is not None]


def _for_finding(current: Alert | None, finding: Finding, now: datetime) -> Action | None:
    if current is None:
        return Action("open", now, finding)
    same = current.fingerprint == finding.fingerprint()
    if current.live:
        return Action("touch" if same else "update", now, finding, current)
    if same and current.resolved_by == BY_PERSON:
        return None  # a person resolved exactly this evidence: it stays resolved
    return Action("open", now, finding)
