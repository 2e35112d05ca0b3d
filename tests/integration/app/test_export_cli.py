"""``tally export …`` and ``tally balances`` end to end: the real store on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger import chain, jsonx
from ledger.exports.writers import CSV_COLUMNS, JOURNAL_COLUMNS
from ledger.model import RawRecord
from ledger.money import fmt
from ledger.precision import PrecisionTable
from ledger.storage.engine import upgrade
from ledger.storage.open import open_ledger
from tests.strategies import order_payload, refund_payload, transaction_payload
from worker.app.cli import main
from worker.config import load_settings
from worker.runtime import ledger_derivers

OBSERVED = datetime(2025, 2, 6, 12, 0, tzinfo=UTC)
API_KEY = "sk-live-export-test-key-0042"
API_SECRET = "export-test-secret-value-0042"
SUSPENSE_ORDER = "20250207000000000003"
SUSPENSE = f"assets:suspense:aurpay:order:{SUSPENSE_ORDER}"  # its own sub-account


def _order(order_id: str, **fields: Any) -> RawRecord:
    return RawRecord("aurpay", "order", order_id, order_payload(order_id=order_id, **fields))


def _records() -> list[RawRecord]:
    refund = refund_payload()  # JSON numbers: 7.6883, 0.353, 7.3353
    return [
        _order("20250207000000000001"),  # BTC, fee with 11 places
        _order(
            "20250207000000000002", chain="ETH", currency="ETH",
            amount="1234.123456789012345678", fee="0.001",
            obtained="1234.122456789012345677",  # 1 wei short: rounding
            update_time="2025-02-07T10:00:00",
        ),
        _order(
            SUSPENSE_ORDER, chain="TRX", currency="USDT-TRC20", amount="100.0",
            fee="1", obtained="98", update_time="2025-02-08T10:00:00",  # 1 USDT unexplained
        ),
        RawRecord("aurpay", "refund", str(refund["order_id"]), refund),
        RawRecord("aurpay", "transaction", "tx-1", transaction_payload(tx_id="tx-1")),
    ]  # fmt: skip


@pytest.fixture
def ledger_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated ledger with orders in three currencies, a refund, suspense and a reversal."""
    upgrade(db_url)
    derivers = ledger_derivers(load_settings())  # the built-in gateways' books
    store = open_ledger(db_url, PrecisionTable(), auto_upgrade=False, derivers=derivers)
    try:
        store.append(_records(), observed_at=OBSERVED)
        corrected = _order(
            SUSPENSE_ORDER, chain="TRX", currency="USDT-TRC20", amount="100.0",
            fee="1", obtained="99", update_time="2025-02-09T10:00:00",
        )  # fmt: skip
        store.append([corrected], observed_at=OBSERVED + timedelta(days=3))
    finally:
        store.close()
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AURPAY_API_KEY", API_KEY)
    monkeypatch.setenv("AURPAY_API_SECRET", API_SECRET)
    monkeypatch.setenv("AURPAY_API_TOKEN", API_SECRET + "-token")
    return db_url


Run = Callable[..., str]


@pytest.fixture
def tally(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``tally ARGS`` in-process; return stdout, failing on a non-zero exit."""

    def run(*args: str, code: int = 0) -> str:
        capsys.readouterr()
        assert main(list(args)) == code, capsys.readouterr().err
        out = capsys.readouterr().out
        assert API_KEY not in out and API_SECRET not in out
        return out

    return run


def test_snapshots_export_is_every_object_as_received_and_rehashable(
    ledger_url: str, tally: Run
) -> None:
    lines = tally("export", "snapshots", "--format", "jsonl").splitlines()
    rows = [jsonx.loads(line) for line in lines]
    assert [r["kind"] for r in rows] == [
        "order", "order", "order", "refund", "transaction", "order",
    ]  # fmt: skip
    assert list(rows[0]) == [
        "seq", "source", "kind", "external_id", "version", "observed_at",
        "content_hash", "prev_hash", "entry_hash", "payload",
    ]  # fmt: skip
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs)
    assert rows[3]["external_id"] == "20240614061316661529"  # refunds keyed by order_id
    assert rows[4]["external_id"] == "tx-1"
    assert rows[5]["version"] == 2 and rows[5]["observed_at"] == "2025-02-09T12:00:00.000000Z"
    # the payload's digits, exactly as received
    assert '"amount":"0.00102549"' in lines[0]
    assert '"amount":"1234.123456789012345678"' in lines[1]
    assert '"amount":"100.0"' in lines[2]
    assert '"amount":7.6883,"network_fee":0.353,"obtained":7.3353' in lines[3]
    for row in rows:  # an auditor can re-derive every hash from the export alone
        assert chain.content_hash(row["payload"]) == row["content_hash"]
        record = chain.snapshot_record(
            seq=row["seq"], source=row["source"], kind=row["kind"],
            external_id=row["external_id"], version=row["version"],
            observed_at=datetime.fromisoformat(row["observed_at"]),
            content_hash=row["content_hash"],
        )  # fmt: skip
        assert chain.entry_hash(row["prev_hash"], record) == row["entry_hash"]

    since = tally("export", "snapshots", "--since", str(seqs[3])).splitlines()
    assert since == lines[4:]


def test_journal_export_jsonl_and_csv_match_the_store(
    ledger_url: str, tally: Run, tmp_path: Path
) -> None:
    store = open_ledger(ledger_url, PrecisionTable(), auto_upgrade=False)
    try:
        expected = [
            [e.key, str(e.seq), p.account, p.currency, fmt(p.amount), e.description]
            for e in store.iter_journal()
            for p in e.postings
        ]
    finally:
        store.close()
    rows = [json.loads(line) for line in tally("export", "journal").splitlines()]
    assert [list(r) for r in rows[:1]] == [list(JOURNAL_COLUMNS)]
    got = [
        [r["journal_id"], str(r["seq"]), r["account"], r["currency"], r["amount"],
         r["description"]]
        for r in rows
    ]  # fmt: skip
    assert got == expected
    amounts = {r["amount"] for r in rows}
    assert {"-1234.123456789012345678", "0.00000820392", "-100"} <= amounts
    # Effective dates, recorded times and the orders' USD values travel with every row
    assert {r["recorded_at"] for r in rows} >= {"2025-02-06T12:00:00.000000Z"}
    sales = [r for r in rows if r["account"] == "income:sales" and r["reverses"] is None]
    assert sales and all(r["value_currency"] == "USD" and r["value"] for r in sales)
    assert any(r["account"].startswith("assets:suspense:") for r in rows)
    assert any(r["account"] == "expenses:rounding" and r["amount"] == "0.000000000000000001"
               for r in rows)  # fmt: skip

    target = tmp_path / "out" / "journal.csv"
    target.parent.mkdir()
    assert tally("export", "journal", "--format", "csv", "--output", str(target)) == ""
    assert [p.name for p in target.parent.iterdir()] == ["journal.csv"]  # no temp file left
    with target.open(newline="", encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == CSV_COLUMNS
        handle.seek(0)
        table = list(csv.DictReader(handle))
    # the CSV's rows are the JSON lines' rows, in accounting form
    assert [
        [r["entry"], r["account"], r["currency"], r["debit"] or "-" + r["credit"], r["memo"]]
        for r in table
    ] == [[key, account, cur, amount, memo] for key, _, account, cur, amount, memo in expected]
    assert [(r["date"], r["reference"], r["reverses"] or None) for r in table] == [
        (r["date"][:10], r["external_id"], r["reverses"]) for r in rows
    ]
    assert {r["recorded_at"] for r in table} >= {"2025-02-06T12:00:00Z"}

    last_seq = rows[-1]["seq"]
    tail = [json.loads(line) for line in tally("export", "journal", "--since", str(last_seq - 1))
            .splitlines()]  # fmt: skip
    assert {r["seq"] for r in tail} == {last_seq}


def test_beancount_export_passes_bean_check(
    ledger_url: str, tally: Run, tmp_path: Path, bean_check: Any
) -> None:
    text = tally("export", "beancount")
    result = bean_check(text)
    assert result.returncode == 0, result.stdout + result.stderr + text
    assert "open Assets:Aurpay:USDT-TRC20 USDT-TRC20" in text
    assert f"open Assets:Suspense:Aurpay:Order:{SUSPENSE_ORDER} USDT-TRC20" in text
    assert "1234.123456789012345678" in text
    assert 'reverses: "aurpay:order:20250207000000000003:v1"' in text

    target = tmp_path / "ledger.exports.beancount"
    target.write_text("old contents\n")
    target.chmod(0o640)
    assert tally("export", "beancount", "--output", str(target)) == ""
    assert target.read_text(encoding="utf-8") == text
    assert target.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode


def test_balances_sum_to_zero_per_currency_and_cut_off_by_date(ledger_url: str, tally: Run) -> None:
    rows = json.loads(tally("balances", "--format", "json"))
    keys = [(r["account"], r["currency"]) for r in rows]
    assert keys == sorted(keys)
    totals: dict[str, Decimal] = {}
    for row in rows:
        assert isinstance(row["balance"], str)
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + Decimal(row["balance"])
    assert set(totals) == {"BTC", "ETH", "USDT-TRC20"}
    assert set(totals.values()) == {0}
    balances = {(r["account"], r["currency"]): r["balance"] for r in rows}
    assert balances[(SUSPENSE, "USDT-TRC20")] == "0"  # corrected by the reversal
    assert balances[("assets:aurpay:ETH", "ETH")] == "1234.122456789012345677"

    at_8th = json.loads(tally("balances", "--at", "2025-02-08", "--format", "json"))
    cut = {(r["account"], r["currency"]): r["balance"] for r in at_8th}
    # The correction restates the sale where it happened (the 8th: the books are not closed)
    assert cut[(SUSPENSE, "USDT-TRC20")] == "0"
    at_7th = json.loads(tally("balances", "--at", "2025-02-07", "--format", "json"))
    assert (SUSPENSE, "USDT-TRC20") not in {(r["account"], r["currency"]) for r in at_7th}
    assert json.loads(tally("balances", "--at", "2020-01-01", "--format", "json")) == []

    table = tally("balances").splitlines()
    assert table[0].split() == ["ACCOUNT", "CURRENCY", "BALANCE"]
    assert len(table) == len(rows) + 1


def test_export_errors_are_one_line(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["export", "snapshots"]) == 1  # never migrated, and exports do not migrate
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tally:")]
    # SQLite: no file, so no ledger (never created by a read); PostgreSQL: an empty database
    behind = "no ledger at" if db_url.startswith("sqlite") else "schema is behind"
    assert errors == [errors[0]] and behind in errors[0] and "Traceback" not in errors[0]
    upgrade(db_url)
    missing = tmp_path / "no-such-dir" / "x.jsonl"
    assert main(["export", "snapshots", "--output", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"tally: cannot write {missing}: No such file or directory\n" in err
    assert "Traceback" not in err
    assert not missing.parent.exists()


def test_output_is_left_untouched_when_the_export_fails(
    ledger_url: str, tally: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snapshots.jsonl"
    target.write_text("previous export\n")

    def broken(*args: Any, **kwargs: Any) -> Any:
        yield from ()
        raise RuntimeError("database went away mid-export")

    monkeypatch.setattr("ledger.storage.store.LedgerStore.iter_snapshots", broken)
    with pytest.raises(RuntimeError):
        main(["export", "snapshots", "--output", str(target)])
    assert target.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
