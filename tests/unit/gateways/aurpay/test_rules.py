"""Aurpay reconciliation rules: what must alert, the near misses that must not, and bad data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.model import Snapshot
from ledger.money import fmt
from ledger.precision import PrecisionTable
from ledger.reconcile.rules import Finding
from tests.strategies import (
    BTC,
    COINS,
    ETH,
    OBSERVED_AT,
    Coin,
    make_snapshot,
    order_payload,
    refund_payload,
    transaction_payload,
)
from worker.gateways.aurpay.plan import make_plan
from worker.gateways.aurpay.rules import evaluate_order, evaluate_refund, evaluate_transaction

PRECISION = PrecisionTable()
D = Decimal
NOW = OBSERVED_AT
GRACE = timedelta(days=3)
JSON_FORMS = {"string": fmt, "number": lambda d: d}


def order(**fields: Any) -> Snapshot:
    return make_snapshot("order", order_payload(**fields))


def tx(**fields: Any) -> Snapshot:
    return make_snapshot("transaction", transaction_payload(**fields))


def refund(**fields: Any) -> Snapshot:
    return make_snapshot("refund", refund_payload(**fields))


def order_findings(subject: Snapshot, linked: Snapshot | None = None) -> list[Finding]:
    return evaluate_order(subject, linked, None, PRECISION, NOW, GRACE)


def money_fields(
    coin: Coin, gross: Decimal, fee: Decimal, obtained: Decimal, form: str
) -> dict[str, Any]:
    as_json = JSON_FORMS[form]
    return {
        "currency": coin.currency,
        "chain": coin.chain,
        "amount": as_json(gross),
        "obtained": as_json(obtained),
        "fee": as_json(fee),
    }


def evaluate_rule(rule: str, coin: Coin, skew: Decimal, form: str) -> list[Finding]:
    """Run ``rule`` on a payload whose obtained is off by ``skew`` (amount 5, fee 0.25)."""
    fields = money_fields(coin, D(5), D("0.25"), D("4.75") - skew, form)
    if rule == "refund":
        fields["network_fee"] = fields.pop("fee")
        return evaluate_refund(refund(**fields), None, PRECISION)
    if rule == "transaction":
        return evaluate_transaction(tx(**fields), PRECISION)
    return order_findings(order(**fields))


@pytest.mark.parametrize("form", JSON_FORMS)
@pytest.mark.parametrize("coin", COINS, ids=lambda c: c.currency)
@pytest.mark.parametrize("rule", ["refund", "transaction", "order"])
@pytest.mark.parametrize(
    ("units", "alerts"),
    [(D(0), False), (D("0.4"), False), (D(-1), False), (D(1), False), (D(2), True), (D(-2), True)],
)
def test_amount_minus_fee_equals_obtained_within_one_unit(
    rule: str, coin: Coin, form: str, units: Decimal, alerts: bool
) -> None:
    skew = units * coin.unit
    found = evaluate_rule(rule, coin, skew, form)
    if not alerts:
        assert found == []
        return
    (finding,) = found
    assert (finding.rule, finding.currency, finding.check) == (rule, coin.currency, "")
    assert finding.expected == D("4.75") and finding.actual == D("4.75") - skew
    assert finding.difference == skew and finding.tolerance == coin.unit


@pytest.mark.parametrize("form", JSON_FORMS)
@pytest.mark.parametrize(
    ("amount", "fee", "obtained"),
    [
        ("0.3", "0.1", "0.2"),
        ("1.1", "0.353", "0.747"),
        ("0.000000000000000003", "0.000000000000000001", "0.000000000000000002"),
    ],
)
def test_exact_decimal_equalities_binary_floats_get_wrong(
    form: str, amount: str, fee: str, obtained: str
) -> None:
    exact = PrecisionTable.with_overrides(tolerances={"ETH": D(0)})  # no slack at all
    fields = money_fields(ETH, D(amount), D(fee), D(obtained), form)
    assert evaluate_transaction(tx(**fields), exact) == []
    assert evaluate_order(order(**fields), None, None, exact, NOW, GRACE) == []
    fields["network_fee"] = fields.pop("fee")
    assert evaluate_refund(refund(**fields), None, exact) == []


def test_the_float_trap_is_real() -> None:
    assert 1.1 - 0.353 != 0.747 and 0.3 - 0.1 != 0.2  # why every amount is a Decimal


def test_doc_refund_info_reconciles(aurpay_fixture: Callable[[str], Any]) -> None:
    data = aurpay_fixture("refund-info-response.json")["data"]
    assert isinstance(data["amount"], Decimal)  # a JSON number, parsed exactly
    exact = PrecisionTable.with_overrides(tolerances={"USDT-TRC20": D(0)})
    assert evaluate_refund(make_snapshot("refund", data), None, exact) == []


def test_a_tolerance_override_widens_the_band() -> None:
    loose = PrecisionTable.with_overrides(tolerances={"BTC": D("0.0001")})
    fields = money_fields(BTC, D(5), D("0.25"), D("4.7499"), "string")
    assert evaluate_transaction(tx(**fields), loose) == []
    assert len(evaluate_transaction(tx(**fields), PRECISION)) == 1


@pytest.mark.parametrize("status", ["PENDING", "OVERDUE", "PARTIAL", "TERMINATED", None])
def test_unsettled_orders_and_transactions_are_not_checked(status: str | None) -> None:
    fields = {"status": status, "obtained": "0.5"}
    assert order_findings(order(**fields), tx(**fields)) == []
    assert evaluate_transaction(tx(**fields), PRECISION) == []


def test_order_without_obtained_has_no_equation() -> None:
    assert order_findings(order(status="SUCCESS", obtained=None)) == []


def test_order_agrees_with_its_transaction() -> None:
    paid = order(status="SUCCESS", obtained="0.00101728608")
    assert order_findings(paid, tx()) == []
    (finding,) = order_findings(paid, tx(amount="0.00102551", obtained="0.00101728608"))
    assert (finding.check, finding.expected, finding.actual) == (
        "amount",
        D("0.00102549"),
        D("0.00102551"),
    )
    assert finding.snapshot_seqs == (1, 1) and len(finding.content_hashes) == 2
    assert order_findings(paid, tx(amount="0.00102550")) == []  # one unit: within tolerance


def test_order_and_transaction_fee_and_obtained_compared_when_both_present() -> None:
    paid = order(status="RESOLVED", obtained="0.00101728608")
    found = order_findings(paid, tx(fee="0.00000920392", obtained="0.00101628608"))
    assert [f.check for f in found] == ["fee", "obtained"]
    assert order_findings(paid, tx(fee="0.00000820492", obtained=None)) == []  # sub-unit
    assert order_findings(paid, tx(fee=None, obtained=None)) == []


def test_currency_mismatch_with_transaction_is_one_finding() -> None:
    (finding,) = order_findings(order(status="SUCCESS"), tx(currency="ETH", amount="9"))
    assert finding.check == "currency" and "BTC ≠ transaction currency ETH" in finding.detail


def test_an_unlinked_transaction_or_one_without_currency_is_not_compared() -> None:
    assert order_findings(order(status="SUCCESS"), tx(tx_id="other", amount="9")) == []
    assert order_findings(order(status="SUCCESS"), tx(currency=None, amount="9")) == []


def refunded_usdt_order(amount: str, fee: str, obtained: str | None) -> Snapshot:
    """A REFUNDED order on the chain and currency of the doc's refund-info example."""
    fields = {"amount": amount, "fee": fee, "obtained": obtained}
    return order(status="REFUNDED", chain="TRX", currency="USDT-TRC20", **fields)


def test_refund_matches_its_order_chain_currency_and_amount() -> None:
    paid = refunded_usdt_order("7.6883", "0", None)
    assert evaluate_refund(refund(), paid, PRECISION) == []
    (chain,) = evaluate_refund(refund(chain="ETH"), paid, PRECISION)
    assert (chain.rule, chain.check) == ("refund-vs-order", "chain")
    found = evaluate_refund(refund(chain="ETH", currency="USDT-ERC20"), paid, PRECISION)
    assert [f.check for f in found] == ["chain", "currency"]


@pytest.mark.parametrize(
    ("refunded", "alerts"), [("7.700000", False), ("7.700001", False), ("7.700002", True)]
)
def test_refund_never_exceeds_what_the_customer_paid(refunded: str, alerts: bool) -> None:
    """The bound is the order's amount, not its net: a merchant may refund the full price and
    absorb the gateway's fee (7.7 refunded on an order that brought in 7.6883)."""
    paid = refunded_usdt_order("7.7", "0.0116999", "7.6883")
    over = D(refunded) - D("7.7")
    refund_info = refund(amount=D(refunded), obtained=D(refunded) - D("0.353"))
    found = evaluate_refund(refund_info, paid, PRECISION)
    assert [(f.expected, f.actual, f.difference) for f in found] == (
        [(D("7.7"), D(refunded), -over)] if alerts else []
    )


def test_a_full_price_refund_with_the_fee_absorbed_does_not_alert() -> None:
    paid = refunded_usdt_order("7.7", "0.0117", "7.6883")
    assert evaluate_refund(refund(amount=D("7.7"), obtained=D("7.347")), paid, PRECISION) == []


def test_without_an_amount_the_bound_is_what_the_order_brought_in() -> None:
    paid = refunded_usdt_order("7.7", "0.0117", "7.6883")
    paid = make_snapshot("order", {**paid.payload, "amount": None})
    assert evaluate_refund(refund(), paid, PRECISION) == []  # refund() refunds 7.6883
    short = make_snapshot("order", {**paid.payload, "obtained": "7.6882"})
    (finding,) = evaluate_refund(refund(), short, PRECISION)
    assert finding.expected == D("7.6882")


def test_an_erc20_refund_whose_network_fee_is_in_eth_does_not_alert() -> None:
    """Gas is paid in the chain's coin: obtained is the whole token amount."""
    token = {"chain": "ETH", "currency": "USDT-ERC20"}
    fee_in_eth = refund(**token, amount=D("25"), network_fee=D("0.0004"), obtained=D("25"))
    assert evaluate_refund(fee_in_eth, None, PRECISION) == []
    fee_in_token = refund(**token, amount=D("25"), network_fee=D("1.2"), obtained=D("23.8"))
    assert evaluate_refund(fee_in_token, None, PRECISION) == []
    wrong = refund(**token, amount=D("25"), network_fee=D("1.2"), obtained=D("24.1"))
    assert [f.rule for f in evaluate_refund(wrong, None, PRECISION)] == ["refund"]
    native = refund(chain="ETH", currency="ETH", amount=D("1"), network_fee=D("0.0004"))
    native = make_snapshot("refund", {**native.payload, "obtained": D("1")})
    assert [f.rule for f in evaluate_refund(native, None, PRECISION)] == ["refund"]


def test_refund_missing_after_the_grace_period() -> None:
    refunded = order(status="REFUNDED", update_time="2025-02-07T00:00:00")  # after OBSERVED_AT
    since = datetime(2025, 2, 7, tzinfo=UTC)
    assert evaluate_order(refunded, None, None, PRECISION, since + GRACE, GRACE) == []
    (finding,) = evaluate_order(
        refunded, None, None, PRECISION, since + GRACE + timedelta(seconds=1), GRACE
    )
    assert (finding.rule, finding.subject_id, finding.currency) == (
        "refund-missing",
        refunded.external_id,
        "BTC",
    )
    assert finding.expected == D("0.00101728608") and finding.actual == 0
    assert evaluate_order(refunded, None, refund(), PRECISION, since + 10 * GRACE, GRACE) == []
    assert (
        evaluate_order(order(status="SUCCESS"), None, None, PRECISION, since + 10 * GRACE, GRACE)
        == []
    )


def test_an_old_refund_first_seen_in_a_backfill_waits_a_grace_from_when_it_was_seen() -> None:
    # Refunded in January, first seen by tally on 2025-02-06 12:00 (OBSERVED_AT): tally has
    # had no chance to fetch its refund-info before then, so nothing is missing yet.
    refunded = order(status="REFUNDED", update_time="2025-01-01T00:00:00")
    assert evaluate_order(refunded, None, None, PRECISION, OBSERVED_AT + GRACE, GRACE) == []
    assert len(evaluate_order(refunded, None, None, PRECISION, OBSERVED_AT + 2 * GRACE, GRACE)) == 1


def test_refunded_since_falls_back_to_observed_at() -> None:
    refunded = order(status="REFUNDED", update_time=None)
    assert evaluate_order(refunded, None, None, PRECISION, OBSERVED_AT + GRACE, GRACE) == []
    assert len(evaluate_order(refunded, None, None, PRECISION, OBSERVED_AT + 2 * GRACE, GRACE)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "abc"),
        ("obtained", 0.5),  # a float: its digits are already lost
        ("fee", "1E+999999999"),
        ("currency", None),
        ("currency", 7),
    ],
)
def test_bad_data_yields_no_finding_and_never_raises(field: str, value: Any) -> None:
    def raw(kind: str, payload: dict[str, Any], fee_field: str = "fee") -> Snapshot:
        bad = {"obtained": "1", {"fee": fee_field}.get(field, field): value}  # "1" would alert
        return make_snapshot(kind, {**payload, **bad})  # unvalidated on purpose

    assert order_findings(raw("order", order_payload(status="SUCCESS"))) == []
    assert evaluate_transaction(raw("transaction", transaction_payload()), PRECISION) == []
    refund_info = raw("refund", refund_payload(), fee_field="network_fee")
    assert evaluate_refund(refund_info, None, PRECISION) == []


def test_fingerprint_is_the_evidence_not_the_prose() -> None:
    (first,) = evaluate_transaction(tx(obtained="1"), PRECISION)
    (again,) = evaluate_transaction(tx(obtained="1"), PRECISION)
    assert first == again and first.fingerprint() == again.fingerprint()
    reworded = Finding(**{**first.__dict__, "detail": "other words", "snapshot_seqs": (99,)})
    assert reworded.fingerprint() == first.fingerprint()
    (changed,) = evaluate_transaction(tx(obtained="2"), PRECISION)
    assert changed.fingerprint() != first.fingerprint()
    (other_tx,) = evaluate_transaction(tx(obtained="1", tx_type="REST"), PRECISION)
    assert other_tx.fingerprint() != first.fingerprint()  # another snapshot content


def test_findings_carry_the_source_of_the_snapshot_they_judge() -> None:
    (default,) = evaluate_transaction(tx(obtained="1"), PRECISION)
    eu = make_snapshot("transaction", transaction_payload(obtained="1"), source="aurpay-eu")
    (finding,) = evaluate_transaction(eu, PRECISION)
    assert (finding.source, finding.rule) == ("aurpay-eu", default.rule)  # same rule id
    assert finding.fingerprint() != default.fingerprint()  # another account's evidence


def test_the_plan_lists_its_rules_with_their_equations() -> None:
    rules = make_plan("aurpay").rules
    assert set(rules) == {
        "refund",
        "transaction",
        "order",
        "refund-vs-order",
        "refund-missing",
        "status-regression",
        "refund-unpaid",
        "refund-after-reversal",
        "unknown-precision",
    }
    assert "amount − network_fee = obtained" in rules["refund"].doc
    assert all("docs/gateways/aurpay.md (A-" in rule.doc for rule in rules.values())
    assert all(rule.id == rule_id for rule_id, rule in rules.items())


# --- one cause, one incident


def test_a_transactions_wrong_obtained_is_the_transactions_incident_alone() -> None:
    """The order agrees with itself and differs from its transaction on obtained alone, while
    the transaction's equation breaks: only the transaction alerts, naming its order."""
    good = {"amount": "1.0", "fee": "0.1", "obtained": "0.9"}
    paid = order(tx_id="t1", **good)
    wrong_tx = tx(tx_id="t1", order_id=paid.external_id, amount="1.0", fee="0.1", obtained="0.95")
    assert order_findings(paid, wrong_tx) == []
    [found] = evaluate_transaction(wrong_tx, PRECISION)
    assert (found.rule, found.related) == ("transaction", (paid.external_id,))
    # The order's own equation broken too: both are causes, the order keeps its disagreement.
    both = order(tx_id="t1", amount="1.0", fee="0.1", obtained="0.8")
    assert [f.check for f in order_findings(both, wrong_tx)] == ["", "obtained"]
    # A transaction not settled judges nothing: the order's disagreement is its own.
    pending = tx(tx_id="t1", status="PENDING", amount="1.0", fee="0.1", obtained="0.95")
    assert [f.check for f in order_findings(paid, pending)] == ["obtained"]


def test_an_order_paid_in_two_transfers_does_not_alert() -> None:
    two = {"tx_hash_list": ["h1", "h2"], "amount": "1.0", "fee": "0.1", "obtained": "0.9"}
    paid = order(tx_id="t1", **two)
    first = tx(tx_id="t1", amount="0.6", fee="0.1", obtained="0.5")
    assert order_findings(paid, first) == []
    too_big = tx(tx_id="t1", amount="1.2", fee="0.1", obtained="1.1")
    [found] = order_findings(paid, too_big)
    assert (found.check, found.difference) == ("transfer", D("-0.2"))


def test_every_rule_states_what_it_rests_on() -> None:
    bases = {rule.id: rule.basis for rule in make_plan("aurpay").rules.values()}
    assert bases == {
        "order": "inferred",
        "transaction": "inferred",
        "refund": "documented",
        "refund-vs-order": "inferred",
        "refund-missing": "inferred",
        "status-regression": "inferred",
        "refund-unpaid": "inferred",
        "refund-after-reversal": "inferred",
        "unknown-precision": "inferred",
    }
