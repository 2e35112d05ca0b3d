"""Meta-alert checks: when reconciliation cannot trust its input, that is an alert of its own.

Pure, like the rules: facts about the sync (read by the caller) and ``now`` in, findings out.
The subject of a meta-alert is the source. Its evidence is constant while the condition lasts
(amounts are zero, the numbers are in ``detail``), so one outage or one bad streak of runs
notifies once, and the alert resolves when the condition clears.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ledger.alerts.state import Scope
from ledger.chain import iso_utc
from ledger.reconcile.rules import Finding

SOURCE_UNREACHABLE = "source-unreachable"
TOO_MANY_REJECTED = "too-many-rejected"
META_RULES = (SOURCE_UNREACHABLE, TOO_MANY_REJECTED)


@dataclass(frozen=True)
class SourceHealth:
    """A source's last successful call and latest error (``sync_cursor`` feed ``_source``);
    ``down_since`` is when it was first tried, used when it never succeeded."""

    source: str
    last_success_at: datetime | None
    last_error: str | None
    down_since: datetime | None = None


@dataclass(frozen=True)
class RunRejects:
    """The rejected records of a source's latest complete sync run."""

    source: str
    run_id: str
    rejected: int


def _meta(rule: str, source: str, detail: str) -> Finding:
    zero = Decimal(0)
    return Finding(rule, source, source, "", zero, zero, zero, zero, (), detail)


def source_unreachable(health: SourceHealth, now: datetime, after: timedelta) -> list[Finding]:
    """The source has answered nothing but errors for longer than ``after``."""
    if health.last_error is None:
        return []
    since = health.last_success_at or health.down_since
    if since is None or now - since <= after:
        return []
    last = iso_utc(health.last_success_at) if health.last_success_at else "never"
    detail = (
        f"{health.source} unreachable for {int((now - since).total_seconds())}s "
        f"(last success {last}; last error: {health.last_error[:300]})"
    )
    return [_meta(SOURCE_UNREACHABLE, health.source, detail)]


def too_many_rejected(run: RunRejects, limit: int) -> list[Finding]:
    """More than ``limit`` records of one run were rejected (quarantined)."""
    if run.rejected <= limit:
        return []
    detail = f"run {run.run_id} rejected {run.rejected} records (limit {limit})"
    return [_meta(TOO_MANY_REJECTED, run.source, detail)]


def evaluate_meta(
    health: Iterable[SourceHealth],
    runs: Iterable[RunRejects],
    now: datetime,
    down_after: timedelta,
    max_rejected: int,
) -> tuple[list[Finding], set[Scope]]:
    """Findings of both meta checks, and the (source, rule, subject) scopes they covered."""
    findings: list[Finding] = []
    scopes: set[Scope] = set()
    for item in health:
        findings += source_unreachable(item, now, down_after)
        scopes.add((item.source, SOURCE_UNREACHABLE, item.source))
    for run in runs:
        findings += too_many_rejected(run, max_rejected)
        scopes.add((run.source, TOO_MANY_REJECTED, run.source))
    return findings, scopes
