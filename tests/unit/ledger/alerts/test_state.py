"""The alert state machine and the meta-alert checks: pure, no DB."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.alerts.state import (
    ACKNOWLEDGED,
    BY_PERSON,
    BY_RECONCILE,
    OPEN,
    RESOLVED,
    Action,
    Alert,
    key_of,
    plan,
)
from ledger.reconcile.meta import (
    SOURCE_UNREACHABLE,
    TOO_MANY_REJECTED,
    RunRejects,
    SourceHealth,
    evaluate_meta,
    source_unreachable,
    too_many_rejected,
)
from ledger.reconcile.rules import Finding

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal


def finding(
    subject: str = "o1", actual: str = "0.8", rule: str = "order", check: str = ""
) -> Finding:
    return Finding(
        rule=rule,
        source="aurpay",
        subject_id=subject,
        currency="BTC",
        expected=D("0.9"),
        actual=D(actual),
        difference=D("0.9") - D(actual),
        tolerance=D("0.00000001"),
        snapshot_seqs=(1,),
        detail="amount − fee ≠ obtained",
        check=check,
        content_hashes=(f"hash-{actual}",),
    )


def stored(found: Finding, alert_id: int = 1, **changes: Any) -> Alert:
    alert = Alert(
        id=alert_id,
        source=found.source,
        rule=found.rule,
        subject_id=found.subject_id,
        check=found.check,
        status=OPEN,
        revision=1,
        fingerprint=found.fingerprint(),
        currency=found.currency,
        expected=found.expected,
        actual=found.actual,
        difference=found.difference,
        tolerance=found.tolerance,
        detail=found.detail,
        snapshot_seqs=found.snapshot_seqs,
        first_seen_at=NOW,
        last_seen_at=NOW,
    )
    return dataclasses.replace(alert, **changes)


def kinds(actions: list[Action]) -> list[str]:
    return [a.kind for a in actions]


SCOPE = {("aurpay", "order", "o1")}


def test_a_new_finding_opens_an_alert_that_notifies() -> None:
    [action] = plan([], [finding()], SCOPE, NOW)
    assert (action.kind, action.notifies, action.revision, action.at) == ("open", True, 1, NOW)


@pytest.mark.parametrize("status", [OPEN, ACKNOWLEDGED])
def test_the_same_evidence_again_only_touches(status: str) -> None:
    [action] = plan([stored(finding(), status=status)], [finding()], SCOPE, NOW)
    assert (action.kind, action.notifies, action.revision) == ("touch", False, 1)


@pytest.mark.parametrize("status", [OPEN, ACKNOWLEDGED])
def test_changed_evidence_updates_once_with_a_new_revision(status: str) -> None:
    current = stored(finding("o1", "0.8"), status=status, revision=3)
    [action] = plan([current], [finding("o1", "0.7")], SCOPE, NOW)
    assert (action.kind, action.notifies, action.revision) == ("update", True, 4)
    assert action.alert == current


def test_a_live_alert_in_scope_without_a_finding_resolves() -> None:
    [action] = plan([stored(finding(), revision=2)], [], SCOPE, NOW)
    assert (action.kind, action.notifies, action.revision) == ("resolve", True, 3)


def test_alerts_outside_the_evaluated_scopes_are_left_alone() -> None:
    other = stored(finding("o2"), alert_id=2)
    assert plan([other], [], SCOPE, NOW) == []
    # another check of the same rule and subject is in scope: it resolves
    cross = stored(finding("o1", check="amount"), alert_id=3)
    assert kinds(plan([cross], [finding()], SCOPE, NOW)) == ["open", "resolve"]


def test_a_person_resolved_the_same_evidence_so_it_stays_resolved() -> None:
    closed = stored(finding(), status=RESOLVED, resolved_by=BY_PERSON, resolved_at=NOW)
    assert plan([closed], [finding()], SCOPE, NOW) == []
    [action] = plan([closed], [finding("o1", "0.5")], SCOPE, NOW)
    assert (action.kind, action.alert) == ("open", None)  # new evidence: a new alert


def test_data_that_breaks_again_after_reconciling_opens_a_new_alert() -> None:
    closed = stored(finding(), status=RESOLVED, resolved_by=BY_RECONCILE, resolved_at=NOW)
    [action] = plan([closed], [finding()], SCOPE, NOW)
    assert (action.kind, action.alert) == ("open", None)


def test_only_the_latest_alert_of_a_key_counts() -> None:
    old = stored(finding("o1", "0.5"), alert_id=1, status=RESOLVED, resolved_by=BY_RECONCILE)
    new = stored(finding(), alert_id=7)
    assert kinds(plan([new, old], [finding()], SCOPE, NOW)) == ["touch"]
    assert plan([new, old], [finding()], SCOPE, NOW)[0].alert == new


def test_plans_are_deterministic_and_one_action_per_key() -> None:
    findings = [finding(f"o{i}", check=c) for i in range(5) for c in ("", "amount")]
    alerts = [stored(finding(f"o{i}", "0.1"), alert_id=i + 1) for i in range(5)]
    scopes = {("aurpay", "order", f"o{i}") for i in range(5)}
    expected = plan(alerts, findings, scopes, NOW)
    rng = random.Random(3)
    for _ in range(5):
        rng.shuffle(findings)
        rng.shuffle(alerts)
        assert plan(alerts, findings + findings[:2], scopes, NOW) == expected


def test_re_planning_after_applying_notifies_nothing() -> None:
    """Apply the actions to a plain in-memory store; the same findings then only touch."""
    findings = [finding("o1"), finding("o2", "0.1"), finding("o3", check="amount")]
    scopes = {("aurpay", "order", s) for s in ("o1", "o2", "o3", "o4")}
    alerts = [stored(finding("o2", "0.2"), alert_id=1), stored(finding("o4"), alert_id=2)]
    for _ in range(2):
        actions = plan(alerts, findings, scopes, NOW)
        alerts = apply(alerts, actions)
    assert kinds(plan(alerts, findings, scopes, NOW)) == ["touch"] * 3


def apply(alerts: list[Alert], actions: list[Action]) -> list[Alert]:
    by_id = {a.id: a for a in alerts}
    for action in actions:
        if action.kind == "open":
            assert action.finding is not None
            new = stored(action.finding, alert_id=max(by_id, default=0) + 1)
            by_id[new.id] = new
        elif action.kind == "update":
            assert action.alert is not None and action.finding is not None
            by_id[action.alert.id] = dataclasses.replace(
                action.alert, fingerprint=action.finding.fingerprint(), revision=action.revision
            )
        elif action.kind == "resolve":
            assert action.alert is not None
            by_id[action.alert.id] = dataclasses.replace(action.alert, status=RESOLVED)
    return list(by_id.values())


def test_alert_json_has_the_documented_fields_as_decimal_strings() -> None:
    found = finding(actual="0.899999999999999999")
    body = stored(found, suspense_journal_seq=4, suspense_journal_key="k").to_json()
    assert {
        "id", "rule", "source", "subject_id", "currency", "expected", "actual", "difference",
        "tolerance", "status", "first_seen_at", "last_seen_at", "snapshot_seqs",
    } <= set(body)  # fmt: skip
    assert (body["expected"], body["actual"], body["difference"], body["tolerance"]) == (
        "0.9",
        "0.899999999999999999",
        "0.000000000000000001",
        "0.00000001",
    )
    assert body["snapshot_seqs"] == [1]
    assert body["first_seen_at"] == "2025-03-01T12:00:00.000000Z"
    assert key_of(found) == ("aurpay", "order", "o1", "")


# --- meta-alerts

AFTER = timedelta(minutes=15)


@pytest.mark.parametrize(
    ("last_success", "error", "alerts"),
    [
        (NOW - timedelta(minutes=16), "HTTP 503", True),
        (NOW - timedelta(minutes=15), "HTTP 503", False),  # exactly the limit: not yet
        (NOW - timedelta(hours=5), None, False),  # quiet, but no error: nothing to sync
        (None, "HTTP 401", True),  # never succeeded: down since the first run
    ],
)
def test_source_unreachable(last_success: datetime | None, error: str | None, alerts: bool) -> None:
    health = SourceHealth("aurpay", last_success, error, NOW - timedelta(hours=1))
    found = source_unreachable(health, NOW, AFTER)
    assert bool(found) is alerts
    if found:
        assert (found[0].rule, found[0].subject_id) == (SOURCE_UNREACHABLE, "aurpay")
        assert error in found[0].detail


def test_an_outage_keeps_one_fingerprint_while_it_lasts() -> None:
    health = SourceHealth("aurpay", NOW - timedelta(hours=1), "HTTP 503")
    [early] = source_unreachable(health, NOW, AFTER)
    [late] = source_unreachable(
        dataclasses.replace(health, last_error="timeout"), NOW + AFTER, AFTER
    )
    assert early.fingerprint() == late.fingerprint()
    assert early.detail != late.detail


@pytest.mark.parametrize(("rejected", "alerts"), [(10, False), (11, True)])
def test_too_many_rejected_is_more_than_the_limit(rejected: int, alerts: bool) -> None:
    found = too_many_rejected(RunRejects("aurpay", "run-1", rejected), 10)
    assert bool(found) is alerts
    assert all(f.rule == TOO_MANY_REJECTED and "run-1" in f.detail for f in found)


def test_meta_scopes_cover_every_source_judged() -> None:
    findings, scopes = evaluate_meta(
        [SourceHealth("aurpay", NOW, None)], [RunRejects("aurpay", "r", 0)], NOW, AFTER, 10
    )
    assert findings == []
    assert scopes == {
        ("aurpay", SOURCE_UNREACHABLE, "aurpay"),
        ("aurpay", TOO_MANY_REJECTED, "aurpay"),
    }
