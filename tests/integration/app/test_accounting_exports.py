"""Exports an accounting system imports, end to end on the real store: the journal CSV
re-imported reproduces every balance; the Beancount file passes bean-check (plugins, balance
assertions at month starts and after a closed period, ``--since``) and loads in Fava with no
errors; QuickBooks Online and Xero journals balance and refuse unmapped accounts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from beancount import loader
from fava.core import FavaLedger

from ledger.exports.quickbooks import COLUMNS as QBO_COLUMNS
from ledger.exports.xero import COLUMNS as XERO_COLUMNS
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.engine import upgrade
from ledger.storage.open import open_ledger
from tests.helpers.journal_csv import reimport
from tests.helpers.sandbox import run_sync, sandbox_settings
from tests.strategies import order_payload, refund_payload, transaction_payload
from worker.app.cli import main
from worker.app.session import worker_session
from worker.config import load_settings
from worker.runtime import ledger_derivers

OBSERVED = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
CLOSE_NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
JANUARY, SUSPENSE_ORDER = "20250110000000000001", "20250208000000000003"
QBO_MAP = {
    "assets": "Crypto assets", "liabilities": "Customer deposits", "income:sales": "Sales",
    "income:refunds": "Refunds", "income:fx": "FX gain-loss", "expenses": "Payment fees",
    "assets:suspense": "Suspense", "equity:conversions": "Conversions",
}  # fmt: skip
XERO_MAP = {
    "assets": "1210", "liabilities": "2100", "income": "200", "expenses": "404",
    "equity": "3900",
}  # fmt: skip


def _order(order_id: str, **fields: Any) -> RawRecord:
    return RawRecord("aurpay", "order", order_id, order_payload(order_id=order_id, **fields))


@pytest.fixture
def books(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Three months of orders, a refund with no price, suspense later corrected, and January
    closed before a correction of a January sale (booked on 1 February)."""
    store = open_ledger(
        ledger_url, PrecisionTable(), auto_upgrade=False, derivers=ledger_derivers(load_settings())
    )
    refund = refund_payload()
    try:
        store.append(
            [
                _order(JANUARY, update_time="2025-01-10T10:00:00"),
                _order(
                    "20250120000000000002", chain="ETH", currency="ETH",
                    amount="1234.123456789012345678", fee="0.001",
                    obtained="1234.122456789012345677", vs_price="3000000.00",
                    update_time="2025-01-20T10:00:00",
                ),
                _order(
                    SUSPENSE_ORDER, chain="TRX", currency="USDT-TRC20", amount="100.0",
                    fee="1", obtained="98", update_time="2025-02-08T10:00:00",
                ),
                _order("20250315000000000004", update_time="2025-03-15T10:00:00"),
                RawRecord("aurpay", "refund", str(refund["order_id"]), refund),
                RawRecord("aurpay", "transaction", "tx-1", transaction_payload(tx_id="tx-1")),
            ],
            observed_at=OBSERVED,
        )  # fmt: skip
        store.close_period(date(2025, 1, 31), now=CLOSE_NOW)
        store.append(
            [
                _order(JANUARY, fee="0.00001", update_time="2025-01-10T10:00:00"),
                _order(
                    SUSPENSE_ORDER, chain="TRX", currency="USDT-TRC20", amount="100.0",
                    fee="1", obtained="99", update_time="2025-02-09T10:00:00",
                ),
            ],
            observed_at=OBSERVED + timedelta(days=1),
        )  # fmt: skip
    finally:
        store.close()
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    return ledger_url


Run = Callable[..., str]


@pytest.fixture
def tally(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``tally ARGS`` in-process; return stdout (stderr too with ``err=True``)."""

    def run(*args: str, code: int = 0, err: bool = False) -> str:
        capsys.readouterr()
        result = main(list(args))
        captured = capsys.readouterr()
        assert result == code, captured.err
        return captured.err if err else captured.out

    return run


def _balances(rows: list[dict[str, str]]) -> dict[tuple[str, str], Decimal]:
    return {(r["account"], r["currency"]): Decimal(r["balance"]) for r in rows}


def test_the_journal_csv_reimported_reproduces_every_balance(books: str, tally: Run) -> None:
    text = tally("export", "journal", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {r["date"] for r in rows} >= {"2025-01-10", "2025-02-01", "2025-03-15"}
    deferred = [r for r in rows if r["entry"] == f"aurpay:order:{JANUARY}:v2"]
    assert deferred and {r["date"] for r in deferred} == {"2025-02-01"}  # January is closed

    whole = _balances(json.loads(tally("balances", "--format", "json")))
    assert {k: v for k, v in reimport(text).items() if v != 0} == {
        k: v for k, v in whole.items() if v != 0
    }
    for day in ("2025-01-31", "2025-02-08", "2025-03-31"):
        at = _balances(json.loads(tally("balances", "--at", day, "--format", "json")))
        kept = "".join(
            line for line in io.StringIO(text, newline="") if line[:10] <= day or line[:4] == "date"
        )
        got = reimport(kept)
        assert {k: v for k, v in got.items() if v != 0} == {k: v for k, v in at.items() if v != 0}


def test_beancount_export_checks_itself_and_loads_in_fava(
    books: str, tally: Run, tmp_path: Path, bean_check: Any
) -> None:
    text = tally("export", "beancount")
    result = bean_check(text)
    assert result.returncode == 0, result.stdout + result.stderr + text
    for plugin in ("noduplicates", "unique_prices", "check_closing"):
        assert f'plugin "beancount.plugins.{plugin}"\n' in text
    directives, errors, _ = loader.load_string(text)
    assert errors == []
    balances = [d for d in directives if type(d).__name__ == "Balance"]
    dates = {d.date for d in balances if d.meta.get("filename") != "<check_closing>"}
    # month starts after the first entry (2024: the refund), and 1 February: January is closed
    assert {date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)} <= dates
    assert any(d.meta.get("filename") == "<check_closing>" for d in balances)  # closings checked
    txns = [d for d in directives if type(d).__name__ == "Transaction"]
    january = [t for t in txns if f"aurpay-{JANUARY}" in t.links]
    assert len(january) == 3  # the sale, its reversal and the restated sale: one link
    assert {t.date for t in january} == {date(2025, 1, 10), date(2025, 2, 1)}
    assert any(t.meta.get("original_date", "").startswith("2025-01-10") for t in january)
    suspense = [
        t for t in txns if any(p.account.startswith("Assets:Suspense:") for p in t.postings)
    ]
    assert suspense and {t.flag for t in suspense} == {"!"}
    assert {t.flag for t in txns if t not in suspense} == {"*"}
    opens = [d.account for d in directives if type(d).__name__ == "Open"]
    assert len(opens) == len(set(opens))  # one open per account

    path = tmp_path / "books.beancount"
    path.write_text(text, encoding="utf-8")
    fava = FavaLedger(str(path))  # Fava's own loader, headless
    assert fava.errors == []
    assert fava.options["operating_currency"] == ["USD"]


def test_beancount_since_opens_with_the_earlier_balances(
    books: str, tally: Run, bean_check: Any
) -> None:
    whole = tally("export", "beancount")
    since = tally("export", "beancount", "--since", "2025-02-01")
    result = bean_check(since)
    assert result.returncode == 0, result.stdout + result.stderr + since
    directives, errors, _ = loader.load_string(since)
    assert errors == []
    txns = [d for d in directives if type(d).__name__ == "Transaction"]
    assert min(t.date for t in txns) == date(2025, 2, 1)
    assert txns[0].narration.startswith("Opening balances")

    def last(text: str) -> set[str]:
        lines = [ln for ln in text.splitlines() if ln.startswith("2025-04-01 balance")]
        return set(lines)

    assert last(since) == last(whole) != set()  # the same closing balances either way
    with pytest.raises(SystemExit) as exited:  # argparse: one line on stderr, exit 2
        main(["export", "beancount", "--since", "2025-02-30"])
    assert exited.value.code == 2


def test_quickbooks_journals_balance_in_usd_and_name_unmapped_accounts(
    books: str, tally: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_QUICKBOOKS_ACCOUNTS", json.dumps(QBO_MAP))
    target = tmp_path / "qbo.csv"
    note = tally("export", "quickbooks", "--output", str(target), err=True)
    assert "skipped 1 entries not exportable in USD: 1 without a value" in note  # the refund
    with target.open(newline="", encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == QBO_COLUMNS
        handle.seek(0)
        rows = list(csv.DictReader(handle))
    assert rows
    journals: dict[str, Decimal] = {}
    for row in rows:
        assert bool(row["Debits"]) != bool(row["Credits"])
        assert all(len(v.split(".")[1]) == 2 for v in (row["Debits"] or row["Credits"],))
        amount = Decimal(row["Debits"] or 0) - Decimal(row["Credits"] or 0)
        journals[row["Journal No."]] = journals.get(row["Journal No."], Decimal(0)) + amount
        assert len(row["Journal No."]) <= 21
        datetime.strptime(row["Journal Date"], "%m/%d/%Y")
    assert set(journals.values()) == {Decimal(0)}
    assert {r["Account Name"] for r in rows} >= {"Crypto assets", "Sales", "Payment fees"}
    assert any("assets:aurpay:ETH 1234.122456789012345677 ETH" in r["Description"] for r in rows)

    february = tally("export", "quickbooks", "--since", "2025-02-01", "--until", "2025-02-28")
    days = {r["Journal Date"] for r in csv.DictReader(io.StringIO(february, newline=""))}
    assert days and {d[:2] for d in days} == {"02"}  # a month at a time
    assert days < {r["Journal Date"] for r in rows}

    before = target.read_bytes()
    monkeypatch.setenv("TALLY_QUICKBOOKS_ACCOUNTS", json.dumps({"income:sales": "Sales"}))
    err = tally("export", "quickbooks", "--output", str(target), code=1, err=True)
    lines = [line for line in err.splitlines() if line.startswith("tally:")]
    assert len(lines) == 1 and "TALLY_QUICKBOOKS_ACCOUNTS" in lines[0]
    assert "assets:aurpay:BTC" in lines[0] and "expenses:gateway-fees" in lines[0]
    monkeypatch.setenv("TALLY_QUICKBOOKS_ACCOUNTS", json.dumps(QBO_MAP))
    err = tally("export", "quickbooks", "--strict", "--output", str(target), code=1, err=True)
    assert "without a value" in err and "(--strict)" in err
    assert target.read_bytes() == before  # a refused export leaves the file untouched
    monkeypatch.setenv("TALLY_QUICKBOOKS_ACCOUNTS", "{not json")
    err = tally("export", "quickbooks", code=1, err=True)
    assert "invalid setting TALLY_QUICKBOOKS_ACCOUNTS: not JSON" in err and "Traceback" not in err


def test_xero_files_balance_per_journal_and_replace_an_earlier_export(
    books: str, tally: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_XERO_ACCOUNTS", json.dumps(XERO_MAP))
    monkeypatch.setenv("TALLY_XERO_TAX_RATE", "No GST")
    out = tmp_path / "xero"
    out.mkdir()
    (out / "xero-manual-journals-002.csv").write_text("from a longer export\n")
    (out / "notes.txt").write_text("not ours\n")
    tally("export", "xero", "--output", str(out), err=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "xero-manual-journals-001.csv"]
    with (out / "xero-manual-journals-001.csv").open(newline="", encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == XERO_COLUMNS
        f.seek(0)
        rows = list(csv.DictReader(f))
    journals: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        key = (row["Narration"], row["Date"])
        journals[key] = journals.get(key, Decimal(0)) + Decimal(row["Amount"])
        datetime.strptime(row["Date"], "%d/%m/%Y")
        assert row["TaxRate"] == "No GST" and row["AccountCode"] in XERO_MAP.values()
    assert set(journals.values()) == {Decimal(0)}
    assert any(Decimal(r["Amount"]) < 0 for r in rows)  # credits are negative
    err = tally("export", "xero", "--output", str(tmp_path / "missing"), code=1, err=True)
    assert "--output must be an existing directory" in err


def test_a_synced_sandbox_world_exports_to_every_system(
    sqlite_url: str,
    sandbox_factory: Callable[..., Any],
    tally: Run,
    tmp_path: Path,
    bean_check: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's "done when" on realistic books: partial payments, refunds, corrections."""
    upgrade(sqlite_url)
    sandbox = sandbox_factory(seed=13, orders=150, rate_invalid_record=0)
    with worker_session(sandbox_settings(sandbox, sqlite_url)) as session:
        run_sync(session)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)

    text = tally("export", "journal", "--format", "csv")
    whole = _balances(json.loads(tally("balances", "--format", "json")))
    assert {k: v for k, v in reimport(text).items() if v != 0} == {
        k: v for k, v in whole.items() if v != 0
    }

    ledger = tally("export", "beancount")
    result = bean_check(ledger)
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / "world.beancount"
    path.write_text(ledger, encoding="utf-8")
    fava = FavaLedger(str(path))
    assert fava.errors == [] and fava.options["operating_currency"] == ["USD"]

    monkeypatch.setenv("TALLY_XERO_ACCOUNTS", json.dumps(XERO_MAP))
    out = tmp_path / "xero"
    out.mkdir()
    tally("export", "xero", "--output", str(out), err=True)
    files = sorted(out.iterdir())
    assert len(files) >= 2  # more than 300 lines: split
    for file in files:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert 0 < len(rows) <= 300
        journals: dict[tuple[str, str], Decimal] = {}
        for row in rows:
            key = (row["Narration"], row["Date"])
            journals[key] = journals.get(key, Decimal(0)) + Decimal(row["Amount"])
        assert set(journals.values()) == {Decimal(0)}

    monkeypatch.setenv("TALLY_QUICKBOOKS_ACCOUNTS", json.dumps(QBO_MAP))
    qbo = list(csv.DictReader(io.StringIO(tally("export", "quickbooks"), newline="")))
    debits = sum(Decimal(r["Debits"] or 0) for r in qbo)
    assert len(qbo) == sum(1 for f in files for _ in f.open()) - len(files)  # same lines
    assert debits == sum(Decimal(r["Credits"] or 0) for r in qbo) > 0
