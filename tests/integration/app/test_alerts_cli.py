"""``tally alerts`` for people on call, on a real ledger: show (evidence, postings, history),
filters, several ids at once, resolutions, the subject view; and ``TALLY_RULES`` at startup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.alerts.resolution import BadResolution, Resolution, write_off
from ledger.alerts.store import AlertStore
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.open import open_ledger
from tests.helpers import books
from tests.strategies import order_payload, transaction_payload
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.app.cli import main
from worker.config import load_settings
from worker.errors import ConfigError

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GOOD = {"amount": "1.0", "fee": "0.1", "obtained": "0.9"}


def _order(order_id: str, **fields: Any) -> RawRecord:
    payload = order_payload(order_id=order_id, tx_id=f"tx-{order_id}", **fields)
    return RawRecord("aurpay", "order", order_id, payload)


@pytest.fixture
def alerts_db(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Three open alerts: o1 (its equation and its transaction), o2, o3."""
    store = open_ledger(ledger_url, PrecisionTable(), derivers=books.DERIVERS)
    try:
        tx = transaction_payload(tx_id="tx-o1", order_id="o1", **GOOD)
        store.append(
            [
                _order("o1", amount="1.0", fee="0.1", obtained="0.8"),
                RawRecord("aurpay", "transaction", "tx-o1", tx),
                _order("o2", amount="1.0", fee="0.1", obtained="0.7"),
                _order("o3", amount="2.0", fee="0.1", obtained="1.8"),
            ],
            observed_at=T0,
        )
        settings = load_settings(database_url=ledger_url)
        reconcile(ReconcileContext.from_settings(store, settings, lambda: T0, books.PLANS))
    finally:
        store.close()
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    yield ledger_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    capsys.readouterr()
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    return captured.out if code == 0 else captured.err


def _ids(capsys: pytest.CaptureFixture[str], *filters: str) -> dict[str, int]:
    listed = json.loads(_run(capsys, "alerts", "--format", "json", *filters))
    return {a["subject_id"]: a["id"] for a in listed}


def test_show_prints_evidence_postings_and_the_full_history(
    alerts_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(capsys)
    assert set(ids) == {"o1", "o2", "o3"}  # o1's two checks are one incident
    o1 = ids["o1"]
    _run(capsys, "alerts", "ack", str(o1), "--note", "ana: on it")
    _run(capsys, "alerts", "resolve", str(o1), "--write-off", "expenses:rounding", "--note", "ana")
    shown = _run(capsys, "alerts", "show", str(o1))
    assert f"alert {o1}: order on aurpay o1" in shown
    assert "aurpay.order (inferred)" in shown and "related     tx-o1" in shown
    assert "[equation] amount 1 − fee 0.1 ≠ obtained 0.8 BTC" in shown
    assert "[obtained] order obtained 0.8 ≠ transaction obtained 0.9" in shown
    assert "assets:suspense:" in shown  # the entry holding the difference
    history = shown.split("history:")[1].strip().splitlines()
    assert [line.strip().split("  ")[2] for line in history] == [
        "opened: difference 0.1 BTC",
        "acknowledged — ana: on it",
        "resolved_by_person as write-off expenses:rounding — ana",
    ]
    as_json = json.loads(_run(capsys, "alerts", "show", str(o1), "--format", "json"))
    assert (as_json["resolution"], as_json["resolution_account"]) == (
        "write-off",
        "expenses:rounding",
    )
    assert [e["kind"] for e in as_json["history"]] == [
        "opened",
        "acknowledged",
        "resolved_by_person",
    ]
    assert "no alert with id 999" in _run(capsys, "alerts", "show", "999", code=1)


def test_filters_select_by_rule_source_subject_and_time(
    alerts_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(_ids(capsys, "--rule", "order")) == {"o1", "o2", "o3"}
    assert _ids(capsys, "--rule", "refund") == {}
    assert set(_ids(capsys, "--source", "aurpay", "--subject", "o2", "--subject", "o3")) == {
        "o2",
        "o3",
    }
    assert _ids(capsys, "--source", "ebioro") == {}
    assert set(_ids(capsys, "--since", "2025-03-01")) == {"o1", "o2", "o3"}
    assert _ids(capsys, "--since", "2025-03-02T00:00:00+00:00") == {}
    assert _ids(capsys, "--since", "1d") == {}  # seen in 2025, not in the last day
    with pytest.raises(SystemExit) as bad:
        main(["alerts", "--since", "yesterday"])
    assert bad.value.code == 2 and "not an ISO date or time" in capsys.readouterr().err


def test_several_ids_at_once_all_or_none(
    alerts_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(capsys)
    two = [str(ids["o2"]), str(ids["o3"])]
    out = _run(capsys, "alerts", "ack", *two, "--note", "bo: batch")
    assert out.count("acknowledged") == 2
    err = _run(capsys, "alerts", "resolve", *two, "999", "--corrected", "--note", "x", code=1)
    assert "no alert with id 999" in err
    assert set(_ids(capsys, "--status", "acknowledged")) == {"o2", "o3"}  # nothing resolved
    out = _run(capsys, "alerts", "resolve", *two, "--corrected", "--note", "bo: fixed upstream")
    assert out.count("resolved as corrected") == 2
    resolved = json.loads(_run(capsys, "alerts", "--status", "resolved", "--format", "json"))
    assert {(a["subject_id"], a["resolution"]) for a in resolved} == {
        ("o2", "corrected"),
        ("o3", "corrected"),
    }
    err = _run(capsys, "alerts", "ack", two[0], "--note", "late", code=1)
    assert "already resolved" in err


def test_the_subject_view_groups_an_objects_alerts(
    alerts_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    grouped = _run(capsys, "alerts", "--group", "subject")
    assert "aurpay o1: 1 alert(s) (related: tx-o1)" in grouped
    assert "aurpay o2: 1 alert(s)" in grouped
    table = _run(capsys, "alerts")
    assert "=,obtained" in table  # o1's checks, one row


def test_resolutions_are_checked_and_a_write_off_says_what_to_post(ledger_url: str) -> None:
    with pytest.raises(BadResolution):
        Resolution.parse(["write-off"])
    with pytest.raises(BadResolution):
        Resolution("lost")
    assert Resolution.parse([]).kind == "explained"
    assert Resolution.parse(["write-off", "expenses:fx"]).label == "write-off expenses:fx"
    store = open_ledger(ledger_url, PrecisionTable(), derivers=books.DERIVERS)
    try:
        store.append([_order("o9", amount="1.0", fee="0.1", obtained="0.8")], observed_at=T0)
        settings = load_settings(database_url=ledger_url)
        reconcile(ReconcileContext.from_settings(store, settings, lambda: T0, books.PLANS))
        [alert] = AlertStore(store.engine).list_alerts()
    finally:
        store.close()
    posting = write_off(alert, "expenses:rounding", "ana")
    assert posting is not None
    assert (posting.currency, str(posting.amount), posting.account) == (
        "BTC",
        "0.1",
        "expenses:rounding",
    )
    assert posting.suspense_journal_key == "aurpay:order:o9:v1"


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ('{"aurpay.order": {"tolerance": {"BTC": "-1"}}}', "tolerance BTC is negative"),
        ('{"aurpay.nope": {"enabled": false}}', "unknown rule aurpay.nope"),
        ('{"aurpay.order": {"severity": "loud"}}', "severity must be one of"),
        ('{"aurpay.order": {"tolerance": {"BTC": "abc"}}}', "tolerance BTC is not a number"),
        ("[1]", "must be a JSON object"),
    ],
)
def test_bad_rule_settings_stop_startup_with_one_line(
    rules: str, says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tally_rules=rules)
    message = str(caught.value)
    assert message.startswith("invalid setting TALLY_RULES: ") and says in message
    assert "\n" not in message
    monkeypatch.setenv("TALLY_RULES", rules)
    assert main(["alerts"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TALLY_RULES" in err and "Traceback" not in err


def test_a_rule_switched_off_resolves_its_alerts(
    alerts_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_RULES", '{"aurpay.order": {"enabled": false}}')
    assert "resolved=3" in _run(capsys, "reconcile", "--all")
    assert _ids(capsys) == {}
    assert set(_ids(capsys, "--status", "resolved")) == {"o1", "o2", "o3"}
