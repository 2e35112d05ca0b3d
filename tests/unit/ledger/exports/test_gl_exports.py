"""QuickBooks Online and Xero journals over constructed entries: the account mapping, the
skip rules, the balance check, rounding and the split at Xero's 300 lines."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ledger.exports.gl import GlSummary, UnbalancedJournal, UnmappedAccounts
from ledger.exports.mapping import AccountMap
from ledger.exports.quickbooks import COLUMNS as QBO_COLUMNS
from ledger.exports.quickbooks import write_quickbooks
from ledger.exports.xero import MAX_LINES, xero_files
from ledger.model import JournalEntry, Posting
from worker.app.export_settings import ExportSettings, load_export_settings
from worker.errors import ConfigError

D = Decimal
ACCOUNTS = AccountMap.parse(
    '{"assets": "1200", "income:sales": "200", "expenses": "404", "equity:suspense": "3900"}'
)


def _sale(seq: int, usd: str = "100.00", currency: str | None = "USD") -> JournalEntry:
    value = D(usd)
    fee = (value / 100).quantize(D("0.01"))
    return JournalEntry(
        key=f"aurpay:order:{seq}:v1",
        date=datetime(2025, 1, 31, 23, 30, tzinfo=UTC),
        description=f"Aurpay order {seq} SUCCESS",
        source="aurpay",
        external_id=str(seq),
        snapshot_seq=seq,
        seq=seq,
        postings=(
            Posting("assets:aurpay:BTC", "BTC", D("0.00099"), value - fee, currency),
            Posting("expenses:gateway-fees", "BTC", D("0.00001"), fee, currency),
            Posting("income:sales", "BTC", D("-0.001"), -value, currency),
        ),
    )


def test_the_mapping_takes_the_nearest_mapped_ancestor() -> None:
    assert ACCOUNTS.resolve("assets:aurpay:BTC") == "1200"
    assert ACCOUNTS.resolve("income:sales") == "200"
    assert ACCOUNTS.resolve("income:refunds") is None  # no catch-all
    exact = AccountMap.parse('{"assets": "1200", "assets:ebioro:USDC": "1230"}')
    assert exact.resolve("assets:ebioro:USDC") == "1230"
    assert exact.resolve("assets:ebioro:EUR") == "1200"


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{x", "not JSON"), ("[]", "must be a JSON object"), ('{"a": ""}', "non-empty string: a"),
     ('{"a": 1}', "non-empty string: a")],
)  # fmt: skip
def test_a_bad_mapping_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        AccountMap.parse(text)


def test_a_bad_mapping_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_XERO_ACCOUNTS", '{"assets": 1210}')
    with pytest.raises(ConfigError) as caught:
        load_export_settings()
    message = str(caught.value)
    assert message.startswith("invalid setting TALLY_XERO_ACCOUNTS: each key and value must")
    assert "\n" not in message
    monkeypatch.delenv("TALLY_XERO_ACCOUNTS")
    assert ExportSettings().tally_xero_tax_rate == "Tax Exempt"


def test_quickbooks_rows_follow_the_import_columns_and_balance() -> None:
    out = io.StringIO(newline="")
    summary = write_quickbooks([_sale(7)], out, accounts=ACCOUNTS, currency="USD")
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == QBO_COLUMNS == (
        "Journal No.", "Journal Date", "Account Name", "Description", "Debits", "Credits",
    )  # fmt: skip
    assert [r[:3] + r[4:] for r in rows[1:]] == [
        ["TALLY-7", "01/31/2025", "1200", "99.00", ""],
        ["TALLY-7", "01/31/2025", "404", "1.00", ""],
        ["TALLY-7", "01/31/2025", "200", "", "100.00"],
    ]
    assert rows[1][3] == (
        "Aurpay order 7 SUCCESS [aurpay:order:7:v1]: assets:aurpay:BTC 0.00099 BTC"
    )
    assert (summary.journals, summary.lines, summary.note()) == (1, 3, "")
    out = io.StringIO(newline="")
    write_quickbooks([_sale(7)], out, accounts=ACCOUNTS, currency="USD", date_format="DD/MM/YYYY")
    assert "TALLY-7,31/01/2025," in out.getvalue()


def test_entries_without_a_value_in_the_currency_are_skipped_and_counted() -> None:
    unpriced = _sale(1, currency=None)
    unpriced = JournalEntry(**{**unpriced.__dict__, "postings": tuple(
        Posting(p.account, p.currency, p.amount) for p in unpriced.postings
    )})  # fmt: skip
    euros = _sale(2, currency="EUR")
    zero = _sale(3, usd="0")
    summary = write_quickbooks(
        [unpriced, euros, zero, _sale(4)], io.StringIO(), accounts=ACCOUNTS, currency="USD"
    )
    assert summary.journals == 1
    assert summary.note() == (
        "skipped 3 entries not exportable in USD: 1 valued at zero, 1 valued in EUR, "
        "1 without a value (tally unpriced)"
    )


def test_unmapped_accounts_are_listed_once_after_the_whole_export() -> None:
    partial = AccountMap.parse('{"income:sales": "200"}')
    out = io.StringIO()
    with pytest.raises(UnmappedAccounts) as caught:
        write_quickbooks([_sale(1), _sale(2)], out, accounts=partial, currency="USD")
    assert str(caught.value) == (
        "invalid setting TALLY_QUICKBOOKS_ACCOUNTS: no GL account for assets:aurpay:BTC, "
        "expenses:gateway-fees"
    )


def test_values_that_do_not_balance_stop_the_export() -> None:
    broken = _sale(1)
    legs = list(broken.postings)
    legs[0] = Posting(legs[0].account, "BTC", legs[0].amount, D("98.99"), "USD")
    broken = JournalEntry(**{**broken.__dict__, "postings": tuple(legs)})
    with pytest.raises(UnbalancedJournal, match="aurpay:order:1:v1 does not balance in USD"):
        write_quickbooks([broken], io.StringIO(), accounts=ACCOUNTS, currency="USD")


def test_fiat_legs_with_more_digits_are_rounded_and_still_balance() -> None:
    entry = _sale(1)
    entry = JournalEntry(**{**entry.__dict__, "postings": (
        Posting("assets:aurpay:USD", "USD", D("10.005"), D("10.005"), "USD"),
        Posting("assets:aurpay:USD", "USD", D("10.005"), D("10.005"), "USD"),
        Posting("income:sales", "USD", D("-20.01"), D("-20.01"), "USD"),
    )})  # fmt: skip
    out = io.StringIO(newline="")
    write_quickbooks([entry], out, accounts=ACCOUNTS, currency="USD")
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    debits = sum(D(r["Debits"] or 0) for r in rows)
    assert debits == sum(D(r["Credits"] or 0) for r in rows) == D("20.01")


def test_xero_files_hold_at_most_300_lines_and_never_split_a_journal() -> None:
    summary = GlSummary("USD")
    entries = [_sale(seq) for seq in range(1, 121)]  # 120 journals of 3 lines
    parts = list(xero_files(entries, summary, accounts=ACCOUNTS, tax_rate="Tax Exempt"))
    assert [len(p) for p in parts] == [MAX_LINES, 60] and MAX_LINES == 300
    assert summary.lines == 360 and summary.journals == 120
    for part in parts:
        totals: dict[tuple[str, str], Decimal] = {}
        for narration, when, _, code, tax, amount in part:
            totals[(narration, when)] = totals.get((narration, when), D(0)) + D(amount)
            assert when == "31/01/2025" and tax == "Tax Exempt" and code in {"1200", "404", "200"}
        assert len(totals) * 3 == len(part) and set(totals.values()) == {D(0)}
    first = parts[0][:3]
    assert [row[5] for row in first] == ["99.00", "1.00", "-100.00"]  # positive = debit
    assert {row[0] for row in first} == {"Aurpay order 1 SUCCESS [aurpay:order:1:v1]"}
    assert date(2025, 1, 31).strftime("%d/%m/%Y") == first[0][1]
