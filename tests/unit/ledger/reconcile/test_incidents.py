"""Incidents and the rule policy: one alert per cause, rules as loud as what they rest on."""

from __future__ import annotations

from decimal import Decimal

from ledger.precision import PrecisionTable
from ledger.reconcile.incidents import incidents
from ledger.reconcile.plans import Terms
from ledger.reconcile.policy import RulePolicy, RuleSetting
from ledger.reconcile.rules import Finding, Rule, RulePrecision, rulebook
from tests.strategies import OBSERVED_AT

D = Decimal


def finding(check: str, difference: str, seqs: tuple[int, ...], **changes: object) -> Finding:
    values: dict[str, object] = {
        "rule": "order",
        "source": "aurpay",
        "subject_id": "o1",
        "currency": "BTC",
        "expected": D("0.9"),
        "actual": D("0.9") - D(difference),
        "difference": D(difference),
        "tolerance": D("0.00000001"),
        "snapshot_seqs": seqs,
        "detail": f"{check or 'equation'} off by {difference}",
        "check": check,
        "content_hashes": tuple(f"h{s}" for s in seqs),
    }
    return Finding(**{**values, **changes})  # type: ignore[arg-type]


def nothing(*_: object) -> list[Finding]:
    """A check that finds nothing."""
    return []


def test_one_rules_findings_on_one_subject_are_one_incident_with_every_check() -> None:
    equation = finding("", "0.1", (5,))
    obtained = finding("obtained", "-0.1", (5, 9), related=("tx-1",))
    other_subject = finding("", "0.2", (7,), subject_id="o2")
    [first, second] = incidents([obtained, other_subject, equation])
    assert (first.subject_id, first.check, first.difference) == ("o1", "", D("0.1"))
    assert [c["check"] for c in first.evidence] == ["", "obtained"]
    assert first.evidence[1]["snapshot_seqs"] == [5, 9]
    assert first.snapshot_seqs == (5, 9) and first.related == ("tx-1",)
    assert "equation off by 0.1" in first.detail and "obtained off by -0.1" in first.detail
    assert second.subject_id == "o2" and len(second.evidence) == 1


def test_an_incident_is_announced_when_its_primary_numbers_change_only() -> None:
    alone = incidents([finding("", "0.1", (5,))])[0]
    with_tx = incidents([finding("", "0.1", (5,)), finding("obtained", "-0.1", (5, 9))])[0]
    assert alone.fingerprint() == with_tx.fingerprint()  # the transaction arrived: quiet
    moved = incidents([finding("", "0.2", (6,))])[0]
    assert moved.fingerprint() != alone.fingerprint()


def test_without_the_equation_the_first_check_by_name_is_primary() -> None:
    [incident] = incidents([finding("obtained", "0.3", (2, 3)), finding("amount", "0.3", (2, 3))])
    assert incident.difference == D("0.3") and incident.evidence[0]["check"] == "amount"


def rule(basis: str, **changes: object) -> Rule:
    book = rulebook(("r", nothing, basis), gateway="g", **changes)  # type: ignore[arg-type]
    return book["r"]


def test_severity_and_default_follow_what_a_rule_rests_on() -> None:
    policy = RulePolicy()
    assert [
        (policy.enabled(rule(b)), policy.severity(rule(b))) for b in ("documented", "inferred")
    ] == [
        (True, "page"),
        (True, "warn"),
    ]
    heuristic = rule("heuristic")
    assert not policy.enabled(heuristic)
    switched = RulePolicy({"g.r": RuleSetting(enabled=True)})
    assert switched.enabled(heuristic) and switched.severity(heuristic) == "info"
    quiet = RulePolicy({"r": RuleSetting(enabled=False, severity="info")})
    assert not quiet.enabled(rule("documented")) and quiet.severity(rule("documented")) == "info"


def test_the_policy_drops_disabled_rules_and_stamps_severity() -> None:
    rules = {"order": Rule("order", "", nothing, "documented", "aurpay")}
    found = [finding("", "0.1", (1,)), finding("", "0", (), rule="source-unreachable")]
    kept = RulePolicy().apply(rules, found)
    assert [(f.rule, f.severity) for f in kept] == [
        ("order", "page"),
        ("source-unreachable", "page"),
    ]
    off = RulePolicy({"aurpay.order": RuleSetting(enabled=False)})
    assert [f.rule for f in off.apply(rules, found)] == ["source-unreachable"]


def test_tolerances_are_per_rule_and_currency_in_the_gateways_units() -> None:
    base = PrecisionTable()
    cents = rule("inferred", scale=-2, tolerance=D("0.5"))
    table = RulePolicy().precision(cents, base)
    assert table.tolerance("USDC") == D("0.005")  # half a cent, in whole USDC
    assert not table.exceeds("USDC", D("0.00001"))  # 0.001 cents: rounding
    assert table.exceeds("USDC", D("0.01"))  # a cent
    tuned = RulePolicy({"g.r": RuleSetting(tolerance={"USDC": D("2"), "*": D("1")})})
    assert tuned.precision(cents, base).tolerance("USDC") == D("0.02")
    assert tuned.precision(cents, base).tolerance("EUR") == D("0.01")
    plain = rule("inferred")
    assert RulePolicy().precision(plain, base) is base
    assert isinstance(tuned.precision(plain, base), RulePrecision)
    assert tuned.precision(plain, base).tolerance("BTC") == D("1")


def test_terms_give_each_rule_its_own_table() -> None:
    rules = {"r": rule("inferred", scale=-2, tolerance=D("0.5"))}
    judging = Terms(PrecisionTable(), OBSERVED_AT, OBSERVED_AT - OBSERVED_AT).judging(rules)
    assert callable(judging)
    assert judging("r").tolerance("USDC") == D("0.005")
    assert judging("other").tolerance("USDC") == D("0.0000001")
