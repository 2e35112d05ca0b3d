"""Statuses that go backwards, judged over an object's versions (pure; each gateway supplies its
lifecycle): ``status-regression`` (a refunded or paid object reported at an earlier stage),
``refund-unpaid`` (a refund for an object never seen paid) and ``refund-after-reversal`` (a
refund stored after the object's refund was reversed). The journal keeps what was posted (a
refund paid out stays paid out); the alert carries the versions as evidence for a person.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.model import Snapshot
from ledger.money import fmt
from ledger.reconcile.rules import Finding

STATUS_REGRESSION = "status-regression"
REFUND_UNPAID = "refund-unpaid"
REFUND_AFTER_REVERSAL = "refund-after-reversal"
REGRESSION_RULES = (STATUS_REGRESSION, REFUND_UNPAID, REFUND_AFTER_REVERSAL)

PAID_STAGE = 2  # stages: 0 created, 1 unpaid outcome, 2 paid, 3 refunded
REFUNDED_STAGE = 3


@dataclass(frozen=True)
class Lifecycle:
    """One gateway's documented lifecycle: each status's stage, and how to read a payload."""

    stage: Mapping[str, int]
    status_of: Callable[[Mapping[str, Any]], str]
    currency_of: Callable[[Mapping[str, Any]], str]
    at_stake: Callable[[Mapping[str, Any]], Decimal]  # what a regression puts at risk

    def stage_of(self, snapshot: Snapshot) -> int | None:
        return self.stage.get(self.status_of(snapshot.payload))


def _finding(
    life: Lifecycle,
    rule: str,
    subject: Snapshot,
    involved: Sequence[Snapshot],
    currency: str,
    amount: Decimal,
    detail: str,
) -> Finding:
    return Finding(
        rule=rule,
        source=subject.source,
        subject_id=subject.external_id,
        currency=currency,
        expected=amount,
        actual=Decimal(0),
        difference=amount,
        tolerance=Decimal(0),
        snapshot_seqs=tuple(v.seq for v in involved),
        detail=detail,
        content_hashes=tuple(v.content_hash for v in involved),
        # the check as evidence (ledger.reconcile.incidents), with each version's status
        evidence=(
            {
                **check_of_regression(amount, currency, involved, detail),
                "versions": [
                    {
                        "seq": v.seq,
                        "kind": v.kind,
                        "version": v.version,
                        "status": life.status_of(v.payload),
                    }
                    for v in involved
                ],
            },
        ),
    )


def check_of_regression(
    amount: Decimal, currency: str, involved: Sequence[Snapshot], detail: str
) -> dict[str, Any]:
    return {
        "check": "",
        "currency": currency,
        "expected": fmt(amount),
        "actual": "0",
        "difference": fmt(amount),
        "tolerance": "0",
        "snapshot_seqs": [v.seq for v in involved],
        "detail": detail,
    }


def status_regression(life: Lifecycle, versions: Sequence[Snapshot]) -> list[Finding]:
    """The latest version stands at an earlier stage than a paid or refunded one before it."""
    if len(versions) < 2:
        return []
    latest = versions[-1]
    now = life.stage_of(latest)
    peak = max(versions[:-1], key=lambda v: life.stage_of(v) or -1)
    was = life.stage_of(peak)
    if now is None or was is None or was < PAID_STAGE or now >= was:
        return []
    detail = (
        f"went from {life.status_of(peak.payload)} (v{peak.version}) back to "
        f"{life.status_of(latest.payload)} (v{latest.version})"
    )
    return [
        _finding(
            life,
            STATUS_REGRESSION,
            latest,
            (peak, latest),
            life.currency_of(latest.payload),
            life.at_stake(latest.payload),
            detail,
        )
    ]


def refund_findings(
    life: Lifecycle,
    paid_object: Sequence[Snapshot],
    refund: Snapshot,
    currency: str,
    amount: Decimal,
    only: str | None = None,
) -> list[Finding]:
    """A refund whose object was never seen paid, or stored after its refund was reversed
    (``only`` one of the two rules). ``paid_object`` are the refunded object's versions, oldest
    first (none stored: no finding)."""
    if not paid_object:
        return []
    found: list[Finding] = []
    stages = [life.stage_of(v) for v in paid_object]
    if all(stage is None or stage < PAID_STAGE for stage in stages):
        detail = f"refund of an object never seen paid ({life.status_of(paid_object[-1].payload)})"
        found.append(
            _finding(
                life, REFUND_UNPAID, refund, (paid_object[-1], refund), currency, amount, detail
            )
        )
    reversal = _refund_reversed(life, paid_object)
    if reversal is not None and refund.seq > reversal.seq:
        detail = (
            f"refund v{refund.version} stored after its refund was reversed "
            f"(v{reversal.version}: {life.status_of(reversal.payload)})"
        )
        found.append(
            _finding(
                life, REFUND_AFTER_REVERSAL, refund, (reversal, refund), currency, amount, detail
            )
        )
    return found


def _refund_reversed(life: Lifecycle, versions: Sequence[Snapshot]) -> Snapshot | None:
    """The first version after a refunded one that is no longer refunded."""
    refunded = False
    for version in versions:
        stage = life.stage_of(version)
        if stage == REFUNDED_STAGE:
            refunded = True
        elif refunded and stage is not None:
            return version
    return None
