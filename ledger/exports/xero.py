"""Xero manual-journal import CSV (Accounting → Manual journals → Import), split into files.

Follows Xero's published template ("Enter multiple manual journals using an import template",
https://help.xero.com/nz/ManualJournalsImport): the columns Narration, Date, Description,
AccountCode, TaxRate, Amount; rows with the same Narration and Date are one journal; Date as
dd/mm/yyyy; AccountCode is the code from the chart of accounts; TaxRate the full name of a tax
rate (a setting: what "no tax" is called depends on the organisation's region); Amount is a
debit when positive, a credit when negative; at most 300 lines in one file. A journal is never
split across files, and its narration carries the entry's key, so two journals never merge.
Amounts are in the base currency at the gateway's quote (``ledger.exports.gl``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import TextIO

from ledger.errors import LedgerError
from ledger.exports.gl import GlSummary, gl_journals, leg_text, minor_unit
from ledger.exports.mapping import AccountMap
from ledger.model import JournalEntry

COLUMNS = ("Narration", "Date", "Description", "AccountCode", "TaxRate", "Amount")
MAX_LINES = 300  # journal lines per import file (the header row is not a line)
SETTING = "TALLY_XERO_ACCOUNTS"

Row = tuple[str, str, str, str, str, str]


class JournalTooLong(LedgerError, ValueError):
    """One journal has more lines than a Xero import file holds."""


def xero_files(
    entries: Iterable[JournalEntry],
    summary: GlSummary,
    *,
    accounts: AccountMap,
    tax_rate: str,
) -> Iterator[list[Row]]:
    """The rows of each import file in turn, at most ``MAX_LINES`` each (one file in memory)."""
    unit = minor_unit(summary.currency)
    part: list[Row] = []
    for journal in gl_journals(entries, accounts, summary.currency, summary, SETTING):
        if len(journal.lines) > MAX_LINES:
            raise JournalTooLong(
                f"entry {journal.entry.key} has {len(journal.lines)} lines; "
                f"a Xero import file holds {MAX_LINES}"
            )
        if len(part) + len(journal.lines) > MAX_LINES:
            yield part
            part = []
        when = journal.date.strftime("%d/%m/%Y")
        for line in journal.lines:
            amount = format(line.amount.quantize(unit), "f")
            row = (journal.narration, when, leg_text(line.posting), line.account, tax_rate, amount)
            part.append(row)
    if part:
        yield part


def write_xero_file(rows: Iterable[Row], out: TextIO) -> int:
    """One import file: the header, then ``rows``; returns the line count."""
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count
