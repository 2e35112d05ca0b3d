"""QuickBooks Online journal-entry import CSV (Settings → Import data → Journal entries).

Follows Intuit's published import format ("Import journal entries", QuickBooks Online help:
https://quickbooks.intuit.com/learn-support/en-au/help-article/import-export-files/import-journal-entries-quickbooks-online/L4tQBwbs7_AU_en_AU):
the columns Journal No., Journal Date, Account Name, Description, Debits, Credits; the rows of
one journal share its Journal No.; each line has a debit or a credit, the other left blank;
the debits equal the credits per journal; a sub-account is written ``Parent:Sub`` (account
numbers switched off while importing). Journal No. is ``TALLY-<seq>`` (QuickBooks keeps at most
21 characters); the date is MM/DD/YYYY unless the company's region reads DD/MM/YYYY.
Amounts are in the home currency at the gateway's quote (``ledger.exports.gl``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from ledger.exports.gl import GlSummary, gl_journals, leg_text, minor_unit
from ledger.exports.mapping import AccountMap
from ledger.model import JournalEntry

COLUMNS = ("Journal No.", "Journal Date", "Account Name", "Description", "Debits", "Credits")
DATE_FORMATS = {"MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y"}
SETTING = "TALLY_QUICKBOOKS_ACCOUNTS"


def write_quickbooks(
    entries: Iterable[JournalEntry],
    out: TextIO,
    *,
    accounts: AccountMap,
    currency: str,
    date_format: str = "MM/DD/YYYY",
) -> GlSummary:
    """Write the import CSV; return what was written and skipped (``GlSummary``)."""
    summary = GlSummary(currency)
    unit = minor_unit(currency)
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for journal in gl_journals(entries, accounts, currency, summary, SETTING):
        when = journal.date.strftime(DATE_FORMATS[date_format])
        for line in journal.lines:
            amount = format(abs(line.amount).quantize(unit), "f")
            writer.writerow(
                (
                    journal.number,
                    when,
                    line.account,
                    f"{journal.narration}: {leg_text(line.posting)}",
                    amount if line.amount > 0 else "",
                    amount if line.amount < 0 else "",
                )
            )
    return summary
