"""How people on call read alerts: the table, the table grouped by subject, one alert in full."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from typing import Any

from ledger.alerts.state import Alert
from ledger.alerts.store import Event
from ledger.model import JournalEntry
from ledger.money import fmt
from ledger.reconcile.rules import Rule

COLUMNS = (
    "id",
    "status",
    "severity",
    "rule",
    "source",
    "subject",
    "checks",
    "currency",
    "expected",
    "actual",
    "difference",
    "last_seen",
)
TIME = "%Y-%m-%d %H:%M:%SZ"


def show_command(alert_id: int) -> str:
    """What a person runs to see an alert in full (sinks and the demo print it)."""
    return f"tally alerts show {alert_id}"


def _row(a: Alert) -> tuple[str, ...]:
    checks = ",".join(c.get("check") or "=" for c in a.evidence) or "="
    return (
        str(a.id),
        a.status,
        a.severity,
        a.rule,
        a.source,
        a.subject_id,
        checks,
        a.currency or "-",
        fmt(a.expected),
        fmt(a.actual),
        fmt(a.difference),
        a.last_seen_at.strftime(TIME),
    )


def _grid(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_table(alerts: Sequence[Alert]) -> str:
    """One line per alert (``checks``: the incident's failing checks, ``=`` the equation)."""
    lines = _grid([COLUMNS, *(_row(a) for a in alerts)])
    if not alerts:
        lines.append("(no alerts)")
    return "\n".join(lines)


def render_grouped(alerts: Sequence[Alert]) -> str:
    """Alerts grouped by (source, subject), the subjects an incident relates to included:
    what to look at together."""

    def subject(a: Alert) -> tuple[str, str]:
        return (a.source, a.subject_id)

    out: list[str] = []
    for (source, subject_id), group in groupby(sorted(alerts, key=subject), key=subject):
        members = list(group)
        related = sorted({r for a in members for r in a.related})
        header = f"{source} {subject_id}: {len(members)} alert(s)"
        out.append(header + (f" (related: {', '.join(related)})" if related else ""))
        out.extend("  " + line for line in _grid([COLUMNS, *(_row(a) for a in members)])[1:])
    return "\n".join(out) if out else "(no alerts)"


def render_show(
    alert: Alert,
    history: Iterable[Event],
    rule: Rule | None,
    postings: Sequence[JournalEntry] = (),
) -> str:
    """One alert in full: what broke, every check's evidence, its postings, its history."""
    lines = [
        f"alert {alert.id}: {alert.rule} on {alert.source} {alert.subject_id}",
        f"  status      {alert.status} (revision {alert.revision}), severity {alert.severity}",
    ]
    if rule is not None:
        lines.append(f"  rule        {rule.name} ({rule.basis}): {rule.doc}")
    if alert.related:
        lines.append(f"  related     {', '.join(alert.related)}")
    lines += [
        f"  difference  {fmt(alert.difference)} {alert.currency or ''} "
        f"(expected {fmt(alert.expected)} − actual {fmt(alert.actual)}; "
        f"tolerance {fmt(alert.tolerance)})".rstrip(),
        f"  seen        {alert.first_seen_at.strftime(TIME)} → {alert.last_seen_at.strftime(TIME)}",
        f"  snapshots   {', '.join(str(s) for s in alert.snapshot_seqs) or '-'}",
    ]
    if alert.resolution:
        account = f" {alert.resolution_account}" if alert.resolution_account else ""
        lines.append(f"  resolution  {alert.resolution}{account} by {alert.resolved_by}")
    lines.append("evidence:")
    lines += [f"  - {_check(check)}" for check in alert.evidence] or ["  (none)"]
    if alert.suspense_journal_key:
        lines.append(
            f"suspense: entry {alert.suspense_journal_key} (seq {alert.suspense_journal_seq})"
        )
    if postings:
        lines.append("postings:")
        for entry in postings:
            lines.append(f"  entry {entry.seq} {entry.key} {entry.date.strftime(TIME)}")
            lines += [
                f"    {p.account:<32} {fmt(p.amount):>24} {p.currency}" for p in entry.postings
            ]
    lines.append("history:")
    lines += [f"  {_event(event)}" for event in history] or ["  (none)"]
    return "\n".join(lines)


def _check(check: Mapping[str, Any]) -> str:
    name = check.get("check") or "equation"
    seqs = ", ".join(str(s) for s in check.get("snapshot_seqs") or [])
    return (
        f"[{name}] {check.get('detail', '')} (expected {check.get('expected')}, actual "
        f"{check.get('actual')}, difference {check.get('difference')} {check.get('currency', '')};"
        f" snapshots {seqs or '-'})"
    )


def _event(event: Event) -> str:
    body = event.alert
    what = event.kind
    if event.kind == "resolved_by_person" and body.get("resolution"):
        account = body.get("resolution_account")
        what += f" as {body['resolution']}" + (f" {account}" if account else "")
    elif event.kind in ("opened", "updated"):
        what += f": difference {body.get('difference')} {body.get('currency') or ''}".rstrip()
    note = f" — {event.note}" if event.note else ""
    return f"{event.at.strftime(TIME)}  rev {event.revision}  {what}{note}"
