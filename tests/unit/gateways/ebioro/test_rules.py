"""Ebioro reconciliation rules: what must alert, the near misses that must not, bad data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.model import Snapshot
from ledger.precision import PrecisionTable
from ledger.reconcile.plans import Terms
from ledger.reconcile.policy import RulePolicy, RuleSetting
from ledger.reconcile.rules import Finding
from tests.ebioro_data import ASSET, PAYMENT_ID, payment_payload, refund_payload, snapshot
from tests.strategies import OBSERVED_AT
from worker.gateways.ebioro.plan import make_plan
from worker.gateways.ebioro.rules import (
    PAYMENT,
    PAYMENT_RULES,
    REFUND_RULES,
    evaluate_payment,
    evaluate_refund,
    marked_refunded,
    refund_payment_id,
)

PRECISION = PrecisionTable()
D = Decimal
NOW = OBSERVED_AT
GRACE = timedelta(days=3)
Load = Callable[[str], Any]
AMOUNTS = PAYMENT
EXCEEDS = "refund-exceeds-paid"


def payment(**fields: Any) -> Snapshot:
    return snapshot(payment_payload(**fields), seq=10)


def refund(refund_id: str = "rf_1", value: Any = 500, seq: int = 20, **fields: Any) -> Snapshot:
    return snapshot(refund_payload(refund_id, value, **fields), seq=seq)


def checks(found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.check) for f in found]


def on_payment(pay: Snapshot, *refunds: Snapshot, now: datetime = NOW) -> list[Finding]:
    return evaluate_payment(pay, refunds, PRECISION, now, GRACE)


# --- the doc's own examples are consistent


def test_the_doc_examples_find_nothing(ebioro_fixture: Load) -> None:
    doc = ebioro_fixture("refund.json")
    rf, embedded = snapshot(doc), snapshot(doc["payment"])
    paid = snapshot(ebioro_fixture("webhook-transaction-updated.json")["data"])

    assert evaluate_refund(rf, None, PRECISION) == []
    assert evaluate_refund(rf, embedded, PRECISION) == []
    assert on_payment(embedded, rf) == []
    assert on_payment(paid) == []


def test_consistent_objects_find_nothing() -> None:
    pay = payment(status="refunded", refunded=True)
    refunds = (refund("rf_1", 400), refund("rf_2", 600, seq=21))
    assert on_payment(pay, *refunds, now=NOW + timedelta(days=30)) == []
    assert all(evaluate_refund(r, pay, PRECISION) == [] for r in refunds)


# --- payment amounts


def test_a_paid_payment_that_brought_in_less_than_was_due() -> None:
    # paid 9.90 of 10.00 due, yet status paid and nothing remaining
    found = on_payment(payment(amount_paid=990, amount_received=990))
    assert checks(found) == [(AMOUNTS, "remaining"), (AMOUNTS, "settlement")]
    settlement = found[1]
    assert (settlement.source, settlement.subject_id, settlement.currency) == (
        "ebioro",
        PAYMENT_ID,
        "USDC",
    )
    # in whole USDC: due − paid, exactly what the journal puts in suspense
    assert (settlement.expected, settlement.actual, settlement.difference) == (
        D("10.00"),
        D("9.90"),
        D("0.10"),
    )
    assert settlement.tolerance == D("1E-7") and settlement.snapshot_seqs == (10,)


@pytest.mark.parametrize(
    ("paid", "alerts"),
    [(D("999.99999"), False), (D("999.99998"), True), (D("1000.00001"), False)],
)
def test_one_unit_of_usdc_is_dust_two_are_not(paid: Decimal, alerts: bool) -> None:
    found = on_payment(payment(amount_paid=paid, amount_received=paid))
    assert bool(found) is alerts


def test_amount_received_and_amount_remaining_add_up() -> None:
    found = on_payment(payment(amount_received=900, amount_remaining=50))
    assert checks(found) == [(AMOUNTS, "received"), (AMOUNTS, "remaining")]
    assert [f.difference for f in found] == [D("1.00"), D("0.50")]


@pytest.mark.parametrize("status", ["open", "processing", "underpaid", "expired", "canceled"])
def test_payments_not_paid_are_checked_for_their_sums_only(status: str) -> None:
    fresh = payment(status=status, amount_paid=0, amount_received=0, amount_remaining=1000)
    assert on_payment(fresh) == []
    part = payment(status=status, amount_paid=400, amount_received=400, amount_remaining=600)
    assert on_payment(part) == []
    bad = payment(status=status, amount_paid=400, amount_received=400, amount_remaining=500)
    assert checks(on_payment(bad)) == [(AMOUNTS, "remaining")]


def test_an_accepted_underpayment_explains_its_shortfall() -> None:
    pay = payment(status="underpaid_accepted", amount_paid=800, amount_received=800,
                  amount_remaining=200)  # fmt: skip
    assert on_payment(pay) == []
    unexplained = payment(status="underpaid_accepted", amount_paid=800, amount_received=800,
                          amount_remaining=150)  # fmt: skip
    found = on_payment(unexplained)
    assert checks(found) == [(AMOUNTS, "remaining"), (AMOUNTS, "settlement")]
    assert found[1].difference == D("0.50")  # due 10.00 − paid 8.00 − accepted 1.50


@pytest.mark.parametrize(
    "fields",
    [{"amount_paid": "abc"}, {"settlement_amount": None}, {"amount_paid": None},
     {"amount_paid": True}, {"settlement_currency": 5, "asset_id": None},
     {"status": "underpaid_accepted", "amount_remaining": "x"}],
)  # fmt: skip
def test_missing_or_malformed_fields_never_raise(fields: dict[str, Any]) -> None:
    assert on_payment(payment(**fields)) == []


# --- refund against its payment


def test_a_refund_above_amount_paid() -> None:
    pay = payment()
    rf = refund(value=1500)
    [found] = evaluate_refund(rf, pay, PRECISION)
    assert (found.rule, found.check, found.subject_id) == (
        "refund-exceeds-paid",
        "amount",
        "rf_1",
    )
    assert (found.expected, found.actual, found.difference) == (D(10), D(15), D(-5))
    assert found.snapshot_seqs == (20, 10)


def test_the_stored_payment_wins_over_the_embedded_copy() -> None:
    rf = refund(value=1500, payment=payment_payload(amount_paid=2000))
    assert evaluate_refund(rf, None, PRECISION) == []  # the embedded copy says 20 USDC paid
    assert checks(evaluate_refund(rf, payment(), PRECISION)) == [("refund-exceeds-paid", "amount")]


def test_refunding_exactly_what_was_paid_is_fine_and_too_much_never_is() -> None:
    assert evaluate_refund(refund(value=1000), payment(), PRECISION) == []
    # the server refuses such a refund at creation (D-rf): failed or not, it should not exist
    over = refund(value=5000, status="failed")
    assert checks(evaluate_refund(over, payment(), PRECISION)) == [(EXCEEDS, "amount")]


def test_completed_refunds_adding_up_to_more_than_was_paid() -> None:
    pay = payment(status="refunded", refunded=True)
    one, two = refund("rf_1", 600), refund("rf_2", 600, seq=21)
    pending = refund("rf_3", 600, seq=22, status="processing")
    other = refund("rf_9", 900, seq=23, payment=payment_payload(id="pt_other"))

    [found] = on_payment(pay, one, two, pending, other)
    assert (found.rule, found.check, found.subject_id) == (
        "refunds-exceed-paid",
        "total",
        PAYMENT_ID,
    )
    assert (found.expected, found.actual) == (D(10), D(12))
    assert found.snapshot_seqs == (10, 20, 21)
    # one refund alone above amount_paid is refund-vs-payment's finding, not counted twice
    assert on_payment(pay, refund("rf_1", 1200), refund("rf_2", 100, seq=21)) == []


def test_a_refunded_refund_without_settlement_id() -> None:
    for missing in ({"settlement_Id": None}, {"settlement_Id": " "}):
        [found] = evaluate_refund(refund(**missing), payment(), PRECISION)
        assert (found.rule, found.check) == ("refund-settlement-id", "settlement_Id")
        assert (found.expected, found.actual, found.currency) == (0, 0, "USDC")
    assert evaluate_refund(refund(status="processing", settlement_Id=None), None, PRECISION) == []


def test_a_refund_in_another_asset_than_its_payment() -> None:
    testnet = "USDC:GBBD47IF6LWK7P7MDEVSCWR7DPUWV3NY3DTQEVFL4NAT4AQH3ZLLFLA5"
    rf = refund(value=5000, amount={"asset_id": testnet, "value": 5000})
    found = evaluate_refund(rf, payment(), PRECISION)
    # amounts in different assets are not compared: one finding, not two
    assert checks(found) == [("refund-asset", "asset_id")]
    assert testnet in found[0].detail and ASSET in found[0].detail

    eurc = refund(amount={"asset_id": "EURC:GDHU", "value": 5})
    no_asset = payment(asset_id=None)
    assert checks(evaluate_refund(eurc, no_asset, PRECISION)) == [("refund-asset", "asset_id")]
    silent = payment(asset_id=None, settlement_currency=None)
    assert evaluate_refund(eurc, silent, PRECISION) == []


# --- a payment marked refunded has a refund


@pytest.mark.parametrize(
    "marks", [{"status": "refunded", "refunded": True}, {"status": "refunded"}, {"refunded": True}]
)
def test_a_refunded_payment_without_refund_after_the_grace_period(marks: dict[str, Any]) -> None:
    pay = payment(**marks, updatedAt="2025-02-06T13:00:00.000Z")  # updated after first seen
    since = datetime(2025, 2, 6, 13, tzinfo=UTC)
    assert on_payment(pay, now=since + GRACE) == []
    [found] = on_payment(pay, now=since + GRACE + timedelta(seconds=1))
    assert (found.rule, found.subject_id) == ("refunded-without-refund", PAYMENT_ID)
    assert (found.expected, found.actual, found.currency) == (D(10), D(0), "USDC")


def test_only_a_refund_that_did_not_fail_counts() -> None:
    pay = payment(status="refunded")
    later = NOW + timedelta(days=30)
    failed = refund(status="failed")
    assert checks(on_payment(pay, failed, now=later)) == [("refunded-without-refund", "")]
    assert on_payment(pay, refund(status="open"), now=later) == []
    assert on_payment(pay, refund(payment=payment_payload(id="pt_x")), now=later) != []


def test_a_backfill_waits_a_grace_from_first_sight_not_from_updated_at() -> None:
    """Refunded long before tally first saw it (updatedAt 11:00, seen 12:00): a backfill reads
    payments before refunds, so the grace counts from the later of the two, as on Aurpay."""
    pay = payment(status="refunded")
    assert on_payment(pay, now=OBSERVED_AT + GRACE) == []
    assert on_payment(pay, now=OBSERVED_AT + GRACE + timedelta(seconds=1)) != []


def test_without_updated_at_the_grace_runs_from_observation() -> None:
    pay = payment(status="refunded", updatedAt=None)
    assert on_payment(pay, now=OBSERVED_AT + GRACE) == []
    assert on_payment(pay, now=OBSERVED_AT + GRACE + timedelta(seconds=1)) != []


# --- the plan's rulebook and helpers


def test_the_plan_lists_its_rules_with_their_doc_fact() -> None:
    rules = make_plan("ebioro").rules
    assert set(rules) == {*PAYMENT_RULES, *REFUND_RULES}
    for rule in rules.values():
        assert "docs/gateways/ebioro.md (E-" in rule.doc or "D-rf" in rule.doc  # its doc fact
        assert not rule.id.startswith("ebioro")  # alerts are scoped by source already


def test_helpers_for_the_reconcile_indexes() -> None:
    assert refund_payment_id(refund().payload) == PAYMENT_ID
    assert refund_payment_id({"payment": {"id": ""}}) is None
    assert refund_payment_id({}) is None
    assert marked_refunded({"status": "Refunded"}) and marked_refunded({"refunded": True})
    assert not marked_refunded({"status": "paid", "refunded": False})


def test_findings_fingerprint_their_evidence() -> None:
    def settlement(paid: int) -> Finding:
        return on_payment(payment(amount_paid=paid, amount_received=paid))[-1]

    a, b, c = settlement(990), settlement(990), settlement(980)
    assert a.check == "settlement"
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


# --- tolerances in the gateway's units (cents)


def judged(pay: Snapshot) -> list[Finding]:
    """The payment as the plan judges it: each rule with its own tolerances."""
    rules = make_plan("ebioro").rules
    terms = Terms(PRECISION, NOW, GRACE)
    return evaluate_payment(pay, (), terms.judging(rules), NOW, GRACE)


@pytest.mark.parametrize(
    ("received", "alerts"),
    [("1000.001", False), ("999.9999999999995", False), ("1000.5", False), ("1000.51", True)],
)
def test_amount_received_within_half_a_cent_is_rounding(received: str, alerts: bool) -> None:
    pay = payment(amount_received=D(received))
    assert bool(judged(pay)) is alerts


def test_without_the_rules_tolerance_a_thousandth_of_a_cent_would_alert() -> None:
    assert on_payment(payment(amount_received=D("1000.001"))) != []  # one Stellar unit


def test_a_cent_tolerance_setting_is_in_cents() -> None:
    pay = payment(amount_received=D("1001"))
    rules = make_plan("ebioro").rules
    wide = Terms(PRECISION, NOW, GRACE, RulePolicy({"ebioro.payment-amounts": wide_cents()}))
    assert evaluate_payment(pay, (), wide.judging(rules), NOW, GRACE) == []
    assert judged(pay) != []


def wide_cents() -> RuleSetting:
    return RuleSetting(tolerance={"USDC": D("1")})


def test_every_rule_states_what_it_rests_on() -> None:
    bases = {rule.id: rule.basis for rule in make_plan("ebioro").rules.values()}
    assert bases["refund-exceeds-paid"] == "documented"
    assert bases["payment-amounts"] == "inferred"
    assert all(rule.name.startswith("ebioro.") for rule in make_plan("ebioro").rules.values())


def test_a_refunds_incident_names_its_payment() -> None:
    big = refund(value=5000)
    [found] = evaluate_refund(big, payment(), PRECISION)
    assert (found.rule, found.related) == (EXCEEDS, (PAYMENT_ID,))
