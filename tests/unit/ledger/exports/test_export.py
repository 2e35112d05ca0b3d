"""The pure export writers, the Beancount mapping and the balances fold, over constructed values."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from beancount import loader

from ledger import jsonx
from ledger.exports.beancount import NameClash, account_name, commodity_name, write_beancount
from ledger.exports.writers import (
    CSV_COLUMNS,
    JOURNAL_COLUMNS,
    write_journal_csv,
    write_journal_jsonl,
    write_snapshots_jsonl,
)
from ledger.journal.balances import (
    end_of_day,
    fold_balances,
    json_rows,
    render_table,
    sorted_balances,
)
from ledger.model import JournalEntry, Posting, Snapshot
from tests.helpers.journal_csv import reimport

D = Decimal
PAYLOAD_TEXT = (
    '{"order_id":"20240614061316661529","amount":"0.00102549","obtained":7.6883,'
    '"eth":1234.123456789012345678,"vs_price":100.0,"refund_et":60,"remark":"caf\u00e9"}'
)


def _snapshot(seq: int = 7) -> Snapshot:
    return Snapshot(
        seq=seq,
        source="aurpay",
        kind="refund",
        external_id="20240614061316661529",
        version=2,
        observed_at=datetime(2024, 6, 14, 6, 13, 16, tzinfo=UTC),
        content_hash="c" * 64,
        prev_hash="0" * 64,
        entry_hash="e" * 64,
        payload=jsonx.loads(PAYLOAD_TEXT),
    )


def _entry(
    key: str,
    seq: int,
    when: datetime,
    postings: list[tuple[str, str, str]],
    description: str = "order paid",
    reverses_key: str | None = None,
) -> JournalEntry:
    return JournalEntry(
        key=key,
        date=when,
        description=description,
        source="aurpay",
        external_id=f"ext-{seq}",
        snapshot_seq=100 + seq,
        postings=tuple(Posting(a, c, D(v)) for a, c, v in postings),
        reverses_key=reverses_key,
        seq=seq,
    )


def _ledger() -> list[JournalEntry]:
    """BTC (8), ETH (18), USDT-TRC20, rounding, suspense, a refund and a reversal."""
    day = datetime(2024, 6, 14, 10, 0, tzinfo=UTC)
    return [
        _entry("aurpay:order:1:paid", 1, day, [
            ("assets:aurpay:BTC", "BTC", "0.00102049"),
            ("expenses:gateway-fees", "BTC", "0.00000500"),
            ("income:sales", "BTC", "-0.00102549"),
        ]),
        _entry("aurpay:order:2:paid", 2, day.replace(day=15), [
            ("assets:aurpay:ETH", "ETH", "1234.123456789012345678"),
            ("expenses:gateway-fees", "ETH", "0.000000000000000001"),
            ("income:sales", "ETH", "-1234.123456789012345679"),
        ], description='He said "refund\\me"\nplease'),
        _entry("aurpay:order:3:paid", 3, day.replace(day=16), [
            ("assets:aurpay:USDT-TRC20", "USDT-TRC20", "7.3353"),
            ("expenses:gateway-fees", "USDT-TRC20", "0.353"),
            ("expenses:rounding", "USDT-TRC20", "0.0000004"),
            ("income:sales", "USDT-TRC20", "-7.6883004"),
            # a second currency in the same entry, balanced on its own
            ("assets:aurpay:BTC", "BTC", "0.1"),
            ("equity:suspense", "BTC", "-0.1"),
        ]),
        _entry("aurpay:order:4:paid", 4, day.replace(day=17), [
            ("assets:aurpay:USDT-TRC20", "USDT-TRC20", "100.0"),
            ("equity:suspense", "USDT-TRC20", "5"),
            ("income:sales", "USDT-TRC20", "-105.0"),
        ]),
        _entry("aurpay:refund:3", 5, day.replace(day=18), [
            ("income:refunds", "USDT-TRC20", "7.3353"),
            ("expenses:network-fees", "USDT-TRC20", "0.353"),
            ("assets:aurpay:USDT-TRC20", "USDT-TRC20", "-7.6883"),
        ], description="refund"),
        _entry("aurpay:order:4:paid:reversal", 6, day.replace(day=19), [
            ("assets:aurpay:USDT-TRC20", "USDT-TRC20", "-100.0"),
            ("equity:suspense", "USDT-TRC20", "-5"),
            ("income:sales", "USDT-TRC20", "105.0"),
        ], description="reversal", reverses_key="aurpay:order:4:paid"),
    ]  # fmt: skip


# --- snapshots


def test_snapshot_jsonl_keeps_key_order_and_the_providers_digits() -> None:
    out = io.StringIO()
    assert write_snapshots_jsonl(iter([_snapshot(7), _snapshot(8)]), out) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    row = jsonx.loads(lines[0])
    assert list(row) == [
        "seq", "source", "kind", "external_id", "version", "observed_at",
        "content_hash", "prev_hash", "entry_hash", "payload",
    ]  # fmt: skip
    assert row["seq"] == 7
    assert row["kind"] == "refund"
    assert row["external_id"] == "20240614061316661529"
    assert row["observed_at"] == "2024-06-14T06:13:16.000000Z"
    payload_text = lines[0].split('"payload":', 1)[1][:-1]
    assert payload_text == PAYLOAD_TEXT  # byte-for-byte: strings, numbers, order, UTF-8
    assert row["payload"]["amount"] == "0.00102549"
    assert row["payload"]["obtained"] == D("7.6883")
    assert str(row["payload"]["eth"]) == "1234.123456789012345678"
    assert str(row["payload"]["vs_price"]) == "100.0"


def test_naive_and_offset_times_are_written_as_utc_z() -> None:
    from datetime import timedelta, timezone

    naive = _snapshot()
    object.__setattr__(naive, "observed_at", datetime(2024, 1, 2, 3, 4, 5))
    shifted = _snapshot()
    object.__setattr__(
        shifted, "observed_at", datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    )
    out = io.StringIO()
    write_snapshots_jsonl([naive, shifted], out)
    times = [json.loads(line)["observed_at"] for line in out.getvalue().splitlines()]
    assert times == ["2024-01-02T03:04:05.000000Z"] * 2


# --- journal


def test_journal_jsonl_has_one_row_per_posting_with_decimal_strings() -> None:
    out = io.StringIO()
    entries = _ledger()
    count = write_journal_jsonl(entries, out)
    assert count == sum(len(e.postings) for e in entries) == 21
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert list(rows[0]) == list(JOURNAL_COLUMNS)
    assert rows[0] == {
        "journal_id": "aurpay:order:1:paid",
        "seq": 1,
        "date": "2024-06-14T10:00:00.000000Z",
        "recorded_at": None,
        "account": "assets:aurpay:BTC",
        "currency": "BTC",
        "amount": "0.00102049",
        "value": None,
        "value_currency": None,
        "source": "aurpay",
        "external_id": "ext-1",
        "snapshot_seq": 101,
        "description": "order paid",
        "reverses": None,
        "original_date": None,
        "value_source": None,
    }
    amounts = [r["amount"] for r in rows]
    assert all(isinstance(a, str) for a in amounts)
    assert "1234.123456789012345678" in amounts
    assert "0.000000000000000001" in amounts
    assert "0.000005" in amounts  # canonical: trailing zeros dropped, never 5E-6
    assert not any("E" in a or "e" in a for a in amounts)


def test_journal_amounts_never_use_exponent_notation() -> None:
    entry = _entry("k", 1, datetime(2024, 1, 1, tzinfo=UTC), [
        ("a", "BTC", "1E-8"), ("b", "BTC", "1.50E+3"), ("c", "BTC", "-1500.00000001"),
    ])  # fmt: skip
    out = io.StringIO()
    write_journal_jsonl([entry], out)
    amounts = [json.loads(line)["amount"] for line in out.getvalue().splitlines()]
    assert amounts == ["0.00000001", "1500", "-1500.00000001"]


def test_journal_csv_has_a_header_and_exact_decimal_strings() -> None:
    out = io.StringIO(newline="")
    entries = _ledger()
    assert write_journal_csv(entries, out) == 21
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS == (
        "date", "recorded_at", "entry", "account", "debit", "credit", "currency", "value",
        "value_currency", "memo", "reference", "reverses",
    )  # fmt: skip
    assert len(rows) == 22
    eth = [r for r in rows[1:] if r[3] == "assets:aurpay:ETH"]
    assert eth == [[
        "2024-06-15", "", "aurpay:order:2:paid", "assets:aurpay:ETH",
        "1234.123456789012345678", "", "ETH", "", "", 'He said "refund\\me"\nplease', "ext-2", "",
    ]]  # fmt: skip
    sales = [r for r in rows[1:] if r[2] == "aurpay:order:2:paid" and r[3] == "income:sales"]
    assert [r[4:6] for r in sales] == [["", "1234.123456789012345679"]]  # a credit, unsigned
    reversal = [r for r in rows[1:] if r[2] == "aurpay:order:4:paid:reversal"]
    assert {r[11] for r in reversal} == {"aurpay:order:4:paid"}
    # QUOTE_MINIMAL: only the field with quotes and a newline is quoted
    assert '"He said ""refund\\me""\nplease"' in out.getvalue()
    assert '"aurpay"' not in out.getvalue()


def test_journal_csv_dates_values_and_recorded_times() -> None:
    entry = replace(
        _entry("k", 1, datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=UTC), []),
        recorded_at=datetime(2026, 12, 1, 21, 15, 42, 427245, tzinfo=UTC),
        postings=(
            Posting("assets:aurpay:BTC", "BTC", D("0.5"), D("21000.00"), "USD"),
            Posting("income:sales", "BTC", D("-0.5"), D("-21000.00"), "USD"),
        ),
    )
    out = io.StringIO(newline="")
    write_journal_csv([entry], out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [(r["date"], r["recorded_at"]) for r in rows] == [
        ("2025-01-31", "2026-12-01T21:15:42Z")
    ] * 2  # ISO: a date for the effective date, UTC to the second for the recorded time
    assert [(r["debit"], r["credit"], r["value"], r["value_currency"]) for r in rows] == [
        ("0.5", "", "21000", "USD"), ("", "0.5", "-21000", "USD"),
    ]  # fmt: skip


def test_journal_csv_reimported_reproduces_every_balance() -> None:
    out = io.StringIO(newline="")
    write_journal_csv(_ledger(), out)
    assert reimport(out.getvalue()) == fold_balances(_ledger())


def test_writers_stream_rows_as_entries_arrive() -> None:
    out = io.StringIO()
    seen: list[int] = []

    def entries() -> Iterator[JournalEntry]:
        for entry in _ledger():
            # everything before this entry is already written when the next one is asked for
            seen.append(out.getvalue().count("\n"))
            yield entry

    write_journal_jsonl(entries(), out)
    assert seen == [0, 3, 6, 12, 15, 18]


# --- beancount names


@pytest.mark.parametrize(
    ("ledger_name", "beancount"),
    [
        ("assets:aurpay:USDT-TRC20", "Assets:Aurpay:USDT-TRC20"),
        ("expenses:gateway-fees", "Expenses:Gateway-Fees"),
        ("equity:suspense", "Equity:Suspense"),
        ("income:refunds", "Income:Refunds"),
        ("assets:aurpay:BTC", "Assets:Aurpay:BTC"),
        ("Liabilities:2024", "Liabilities:2024"),
        ("suspense", "Equity:Unmapped:Suspense"),
        ("other:thing", "Equity:Unmapped:Other:Thing"),
    ],
)
def test_account_names_follow_beancount_rules(ledger_name: str, beancount: str) -> None:
    assert account_name(ledger_name) == beancount


def test_lossy_account_components_get_a_stable_hash_suffix() -> None:
    dotted, underscored = account_name("assets:a.b"), account_name("assets:a_b")
    assert dotted.startswith("Assets:A-B-") and underscored.startswith("Assets:A-B-")
    assert dotted != underscored
    assert account_name("assets:a.b") == dotted  # deterministic
    assert account_name("assets::x").startswith("Assets:X-")


@pytest.mark.parametrize("currency", ["BTC", "ETH", "USDT-TRC20", "USDC", "NT.TO", "A1"])
def test_valid_commodities_are_kept(currency: str) -> None:
    assert commodity_name(currency) == currency


@pytest.mark.parametrize(
    ("currency", "prefix"),
    [("usdt", "USDT-"), ("1INCH", "C1INCH-"), ("X", "X-"), ("USDT-", "USDT--"),
     ("A" * 30, "A" * 15 + "-"), ("bad currency!", "BAD-CURRENCY--")],
)  # fmt: skip
def test_other_currencies_map_to_valid_commodities(currency: str, prefix: str) -> None:
    mapped = commodity_name(currency)
    assert mapped.startswith(prefix)
    assert len(mapped) <= 24
    assert mapped == commodity_name(currency)
    assert mapped[0].isalpha() and mapped[-1].isalnum()


def test_two_accounts_mapping_to_one_name_are_refused() -> None:
    entry = _entry("k", 1, datetime(2024, 1, 1, tzinfo=UTC), [
        ("assets:aurpay:BTC", "BTC", "1"), ("Assets:Aurpay:BTC", "BTC", "-1"),
    ])  # fmt: skip
    with pytest.raises(NameClash, match="both map to Assets:Aurpay:BTC"):
        write_beancount([entry], io.StringIO())


# --- beancount ledger


def test_beancount_ledger_passes_bean_check_and_keeps_every_digit(bean_check) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    assert write_beancount(iter(_ledger()), out) == 6
    text = out.getvalue()
    result = bean_check(text)
    assert result.returncode == 0, result.stdout + result.stderr + text

    directives, errors, _ = loader.load_string(text)
    assert errors == []
    opens = {d.account: d for d in directives if type(d).__name__ == "Open"}
    assert set(opens) == {
        "Assets:Aurpay:BTC", "Assets:Aurpay:ETH", "Assets:Aurpay:USDT-TRC20",
        "Expenses:Gateway-Fees", "Expenses:Network-Fees", "Expenses:Rounding",
        "Equity:Suspense", "Income:Refunds", "Income:Sales",
    }  # fmt: skip
    assert opens["Assets:Aurpay:BTC"].date == date(2024, 6, 14)  # first use
    assert opens["Assets:Aurpay:BTC"].currencies == ["BTC"]
    assert opens["Assets:Aurpay:BTC"].booking is None
    assert sorted(opens["Equity:Suspense"].currencies) == ["BTC", "USDT-TRC20"]
    commodities = {d.currency for d in directives if type(d).__name__ == "Commodity"}
    assert commodities == {"BTC", "ETH", "USDT-TRC20"}

    txns = [d for d in directives if type(d).__name__ == "Transaction"]
    assert len(txns) == 6
    eth = next(t for t in txns if t.meta["key"] == "aurpay:order:2:paid")
    assert eth.narration == 'He said "refund\\me" please'  # quote, backslash kept; newline spaced
    assert eth.meta["source"] == "aurpay"
    assert eth.meta["external_id"] == "ext-2"
    assert eth.meta["snapshot_seq"] == 102
    assert eth.postings[0].units.number == D("1234.123456789012345678")
    assert eth.postings[1].units.number == D("0.000000000000000001")
    reversal = next(t for t in txns if t.meta["key"] == "aurpay:order:4:paid:reversal")
    assert reversal.meta["reverses"] == "aurpay:order:4:paid"
    assert all(p.cost is None and p.price is None for t in txns for p in t.postings)
    assert "100.0 USDT-TRC20" in text  # the provider's digits, not a normalised 100


def test_bean_check_rejects_an_unbalanced_entry(bean_check) -> None:  # type: ignore[no-untyped-def]
    # guards the guard: the check above would be worthless if bean-check accepted anything
    entry = _entry("k", 1, datetime(2024, 1, 1, tzinfo=UTC), [
        ("assets:aurpay:BTC", "BTC", "1"), ("income:sales", "BTC", "-0.9"),
    ])  # fmt: skip
    out = io.StringIO()
    write_beancount([entry], out)
    assert bean_check(out.getvalue()).returncode != 0


def test_beancount_maps_odd_currencies_and_records_the_original(bean_check) -> None:  # type: ignore[no-untyped-def]
    entry = _entry("k", 1, datetime(2024, 1, 1, tzinfo=UTC), [
        ("assets:x:usdt", "usdt", "1.5"), ("income:sales", "usdt", "-1.5"),
    ])  # fmt: skip
    out = io.StringIO()
    write_beancount([entry], out)
    result = bean_check(out.getvalue())
    assert result.returncode == 0, result.stdout + result.stderr
    mapped = commodity_name("usdt")
    assert f'commodity {mapped}\n  currency: "usdt"\n' in out.getvalue()


def test_empty_ledger_is_a_valid_beancount_file(bean_check) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    assert write_beancount([], out) == 0
    assert bean_check(out.getvalue()).returncode == 0


# --- balances


def test_balances_fold_sums_per_account_and_currency() -> None:
    balances = sorted_balances(fold_balances(iter(_ledger())))
    got = {(b.account, b.currency): b.balance for b in balances}
    assert got[("assets:aurpay:USDT-TRC20", "USDT-TRC20")] == D("7.3353") - D("7.6883")
    assert got[("equity:suspense", "USDT-TRC20")] == 0  # reversed
    assert got[("assets:aurpay:BTC", "BTC")] == D("0.10102049")
    assert got[("assets:aurpay:ETH", "ETH")] == D("1234.123456789012345678")
    keys = [(b.account, b.currency) for b in balances]
    assert keys == sorted(keys)
    per_currency: dict[str, Decimal] = {}
    for b in balances:
        per_currency[b.currency] = per_currency.get(b.currency, D(0)) + b.balance
    assert set(per_currency.values()) == {0}


def test_balances_at_a_date_include_that_whole_day_and_nothing_after() -> None:
    late = datetime(2024, 6, 17, 23, 59, 59, 999999, tzinfo=UTC)
    ledger = [
        *_ledger(),
        _entry("late", 7, late, [("assets:aurpay:BTC", "BTC", "1"), ("income:sales", "BTC", "-1")]),
    ]
    assert end_of_day(date(2024, 6, 17)) == datetime(2024, 6, 18, tzinfo=UTC)
    totals = fold_balances(ledger, before=end_of_day(date(2024, 6, 17)))
    at = {(b.account, b.currency): b.balance for b in sorted_balances(totals)}
    assert at[("equity:suspense", "USDT-TRC20")] == 5  # the 19th's reversal is not yet counted
    assert at[("assets:aurpay:BTC", "BTC")] == D("1.10102049")  # 23:59:59.999999 counts
    assert ("income:refunds", "USDT-TRC20") not in at  # the refund is on the 18th
    before_all = fold_balances(ledger, before=end_of_day(date(2024, 6, 13)))
    assert before_all == {}


def test_balances_json_rows_and_table() -> None:
    balances = sorted_balances({
        ("income:sales", "BTC"): D("-0.00102549"),
        ("assets:aurpay:BTC", "BTC"): D("1234.50"),
        ("equity:suspense", "USDT-TRC20"): D("0E-6"),
    })  # fmt: skip
    assert json_rows(balances) == [
        {"account": "assets:aurpay:BTC", "currency": "BTC", "balance": "1234.5"},
        {"account": "equity:suspense", "currency": "USDT-TRC20", "balance": "0"},
        {"account": "income:sales", "currency": "BTC", "balance": "-0.00102549"},
    ]
    assert render_table(balances) == (
        "ACCOUNT            CURRENCY          BALANCE\n"
        "assets:aurpay:BTC  BTC         1234.5\n"
        "equity:suspense    USDT-TRC20     0\n"
        "income:sales       BTC           -0.00102549\n"
    )


def test_balances_fold_is_exact_beyond_28_digits() -> None:
    big = "12345678901.123456789012345678"  # 29 significant digits: the default context rounds
    entries = [
        _entry(f"k{i}", i, datetime(2024, 1, 1, tzinfo=UTC), [
            ("assets:aurpay:ETH", "ETH", big), ("income:sales", "ETH", "-" + big),
        ])
        for i in range(3)
    ]  # fmt: skip
    totals = fold_balances(entries)
    assert str(totals[("assets:aurpay:ETH", "ETH")]) == "37037036703.370370367037037034"


def test_beancount_asserts_balances_links_objects_and_marks_closings(bean_check) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    write_beancount(_ledger, out, closed_through=[date(2024, 6, 16)])  # a callable: 2 reads
    text = out.getvalue()
    result = bean_check(text)
    assert result.returncode == 0, result.stdout + result.stderr + text
    directives, errors, _ = loader.load_string(text)
    assert errors == []
    ours = [d for d in directives if type(d).__name__ == "Balance" and d.meta["lineno"] > 0]
    assert {d.date for d in ours} == {date(2024, 6, 17), date(2024, 7, 1)}  # close, month
    after_close = {(d.account, d.amount.currency): d.amount.number for d in ours
                   if d.date == date(2024, 6, 17)}  # fmt: skip
    assert after_close[("Equity:Suspense", "BTC")] == D("-0.1")  # order 3, on the 16th
    assert after_close[("Equity:Suspense", "USDT-TRC20")] == 0  # order 4 is on the 17th
    assert after_close[("Assets:Aurpay:BTC", "BTC")] == D("0.10102049")
    txns = [d for d in directives if type(d).__name__ == "Transaction"]
    assert [sorted(t.links) for t in txns[:2]] == [["aurpay-ext-1"], ["aurpay-ext-2"]]
    # the reversal clears suspense in USDT-TRC20 on the 19th: the leg says so, and
    # check_closing asserted zero on the 20th
    # (the plugin consumes the ``closing`` metadata, so the text shows it)
    assert re.findall(r"\n  (\S+) +(\S+ \S+)\n    closing: TRUE\n", text) == [
        ("Equity:Suspense", "-5 USDT-TRC20")
    ]
    assert any(d.meta["filename"] == "<check_closing>" and d.date == date(2024, 6, 20)
               for d in directives if type(d).__name__ == "Balance")  # fmt: skip


def test_beancount_links_odd_ids_and_names_restated_versions() -> None:
    from ledger.exports.beancount import link_name

    assert link_name("aurpay", "20250207000000000001") == "aurpay-20250207000000000001"
    odd = link_name("ebioro", "pay id:1")
    assert odd.startswith("ebioro-pay-id-1-") and odd != link_name("ebioro", "pay id;1")
    day = datetime(2024, 1, 1, tzinfo=UTC)
    legs = [("assets:aurpay:BTC", "BTC", "1"), ("income:sales", "BTC", "-1")]
    first = _entry("aurpay:order:9:v1", 1, day, legs, description="paid")
    again = _entry("aurpay:order:9:v3", 2, day, legs, description="paid")
    out = io.StringIO()
    write_beancount([first, again], out)
    directives, errors, _ = loader.load_string(out.getvalue())
    assert errors == []  # noduplicates: the restated version is not a duplicate
    narrations = [d.narration for d in directives if type(d).__name__ == "Transaction"]
    assert narrations == ["paid", "paid (version 3)"]


def test_noduplicates_catches_an_entry_written_twice() -> None:
    # guards the guard: the plugin is live, so a writer bug repeating an entry would show
    entry = _ledger()[0]
    out = io.StringIO()
    write_beancount([entry, entry], out)
    _, errors, _ = loader.load_string(out.getvalue())
    assert any("Duplicate" in str(e.message) for e in errors)


def test_beancount_since_folds_the_past_into_one_opening_entry(bean_check) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    assert write_beancount(_ledger(), out, since=date(2024, 6, 17)) == 3  # 17th, 18th, 19th
    text = out.getvalue()
    assert bean_check(text).returncode == 0, text
    directives, errors, _ = loader.load_string(text)
    assert errors == []
    opening = next(d for d in directives if type(d).__name__ == "Transaction")
    assert opening.date == date(2024, 6, 17) and opening.narration.startswith("Opening balances")
    full = io.StringIO()
    write_beancount(_ledger(), full)
    july = [ln for ln in text.splitlines() if ln.startswith("2024-07-01 balance")]
    assert july and july == [ln for ln in full.getvalue().splitlines()
                             if ln.startswith("2024-07-01 balance")]  # fmt: skip


def test_beancount_since_leaves_out_what_was_cleared_before(bean_check) -> None:  # type: ignore[no-untyped-def]
    day = datetime(2024, 1, 1, tzinfo=UTC)
    cleared = [
        _entry("a", 1, day, [("equity:suspense", "BTC", "1"), ("assets:x:BTC", "BTC", "-1")]),
        _entry("b", 2, day.replace(day=2), [
            ("equity:suspense", "BTC", "-1"), ("assets:x:BTC", "BTC", "1"),
        ]),
        _entry("c", 3, day.replace(day=3), [
            ("equity:suspense", "USDT", "1"), ("income:sales", "USDT", "-1"),
        ]),
    ]  # fmt: skip
    out = io.StringIO()
    assert write_beancount(cleared, out, since=date(2024, 1, 3)) == 1
    text = out.getvalue()
    assert bean_check(text).returncode == 0, text
    assert "Opening balances" not in text and " BTC" not in text  # nothing left of BTC
    assert "2024-02-01 balance Equity:Suspense  1 USDT" in text
