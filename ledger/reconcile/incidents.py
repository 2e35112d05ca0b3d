"""Incidents: one alert per (source, rule, subject), carrying every failing check as evidence.

A rule may break several of its checks on one subject for one cause (an order whose
``obtained`` is off breaks its own equation and disagrees with its transaction): people act on
causes, so those findings become one incident. Its amounts are the primary check's (the
subject's own equation when it failed, the amount that sits in suspense), its evidence lists
every check with its numbers and snapshot seqs. Its fingerprint is the primary check's: a
change in those numbers is announced; a supporting check appearing (the transaction synced
after its order) refreshes the evidence silently, so one cause notifies once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ledger.money import fmt
from ledger.reconcile.rules import Finding

IncidentKey = tuple[str, str, str]  # (source, rule, subject_id)


def check_of(finding: Finding) -> dict[str, Any]:
    """One check as evidence: what was compared, the difference, and where it was read."""
    return {
        "check": finding.check,
        "currency": finding.currency,
        "expected": fmt(finding.expected),
        "actual": fmt(finding.actual),
        "difference": fmt(finding.difference),
        "tolerance": fmt(finding.tolerance),
        "snapshot_seqs": list(finding.snapshot_seqs),
        "detail": finding.detail,
    }


def incident(findings: list[Finding]) -> Finding:
    """The findings of one (source, rule, subject) folded into one; check is always ""."""
    ordered = sorted(findings, key=lambda f: (f.check != "", f.check, f.fingerprint()))
    primary = ordered[0]
    seqs = tuple(dict.fromkeys(s for f in ordered for s in f.snapshot_seqs))
    related = tuple(sorted({r for f in ordered for r in f.related} - {primary.subject_id}))
    evidence = tuple(e for f in ordered for e in (f.evidence or (check_of(f),)))
    return dataclasses.replace(
        primary,
        check="",
        detail="; ".join(dict.fromkeys(f.detail for f in ordered)),
        snapshot_seqs=seqs,
        evidence=evidence,
        related=related,
    )


def incidents(findings: Iterable[Finding]) -> list[Finding]:
    """Every finding grouped by (source, rule, subject) into incidents, in key order."""
    groups: dict[IncidentKey, list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.source, finding.rule, finding.subject_id), []).append(finding)
    return [incident(group) for _, group in sorted(groups.items())]
