"""Journal entries as an accounting system's manual journals: one currency, mapped accounts.

QuickBooks Online and Xero take a manual journal in one currency (the company's home currency;
neither knows BTC or USDT as a currency). So a journal is exported in the reporting currency at
each leg's ``value``, the gateway's own quote, and never at a rate tally would invent:

- an entry whose every leg is valued in the reporting currency is exported, each leg at its
  value rounded to the currency's minor unit (values are stored that way already; a leg
  booked in fiat with more digits is rounded, the remainder going to the legs rounding moved
  most, so the journal still balances exactly);
- an entry with a leg without a value (flagged ``no-price``; ``tally unpriced`` lists them),
  or valued in another currency, is skipped and counted by reason; so is one whose value is
  zero on every leg (a journal of nothing);
- an entry whose values do not sum to zero, or a written journal whose lines do not, stops
  the export (``UnbalancedJournal``): the target would refuse it, and it is a bug.

Every exported leg's GL account comes from an ``AccountMap``; the tally accounts it does not
map are collected over the whole export and refused at the end in one ``UnmappedAccounts``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from ledger.errors import LedgerError
from ledger.exports.mapping import AccountMap
from ledger.model import JournalEntry, Posting
from ledger.money import exact_arithmetic, fmt
from ledger.precision import FIAT_MINOR_UNITS
from ledger.timeparse import as_utc

DEFAULT_MINOR_UNITS = 2


class UnmappedAccounts(LedgerError, ValueError):
    """Exported legs post to tally accounts the GL mapping does not name (listed)."""

    def __init__(self, setting: str, accounts: Iterable[str]) -> None:
        self.accounts = sorted(accounts)
        super().__init__(f"invalid setting {setting}: no GL account for {', '.join(self.accounts)}")


class UnbalancedJournal(LedgerError, ValueError):
    """A journal whose lines do not sum to zero in the export currency (the export stops)."""


@dataclass(frozen=True)
class GlLine:
    account: str  # the GL account (a QuickBooks name, a Xero code)
    amount: Decimal  # signed, in the export currency's minor unit: positive = debit
    posting: Posting  # the tally leg it comes from, for the line's description


@dataclass(frozen=True)
class GlJournal:
    number: str  # "TALLY-<seq>": unique per entry, at most 21 characters (QuickBooks' limit)
    date: date  # effective date
    entry: JournalEntry
    lines: tuple[GlLine, ...]

    @property
    def narration(self) -> str:
        """The entry's description and key: unique per journal (Xero groups lines by it)."""
        return f"{self.entry.description} [{self.entry.key}]"


@dataclass
class GlSummary:
    """What an export wrote and what it skipped, by reason."""

    currency: str
    journals: int = 0
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def note(self) -> str:
        """One line for the operator, empty when nothing was skipped."""
        if not self.skipped:
            return ""
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        total = sum(self.skipped.values())
        return f"skipped {total} entries not exportable in {self.currency}: {reasons}"


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-FIAT_MINOR_UNITS.get(currency, DEFAULT_MINOR_UNITS))


def leg_text(posting: Posting) -> str:
    """The tally leg in words, kept on the GL line: the crypto amount travels with the value."""
    return f"{posting.account} {fmt(posting.amount)} {posting.currency}"


def gl_journals(
    entries: Iterable[JournalEntry],
    accounts: AccountMap,
    currency: str,
    summary: GlSummary,
    setting: str,
) -> Iterator[GlJournal]:
    """The exportable journals of ``entries`` in ``currency``, counting the rest in
    ``summary``; raises ``UnmappedAccounts`` (naming ``setting``) after the last entry."""
    unit = minor_unit(currency)
    unmapped: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        with exact_arithmetic():
            journal = _journal(entry, number, accounts, currency, unit, summary, unmapped)
        if journal is not None:
            yield journal
    if unmapped:
        raise UnmappedAccounts(setting, unmapped)


def _journal(
    entry: JournalEntry,
    number: int,
    accounts: AccountMap,
    currency: str,
    unit: Decimal,
    summary: GlSummary,
    unmapped: set[str],
) -> GlJournal | None:
    """The journal of one entry, or None (skipped and counted, or an account unmapped)."""
    reason = _skip_reason(entry, currency)
    if reason:
        summary.skipped[reason] += 1
        return None
    amounts = _rounded(entry, currency, unit)
    lines: list[GlLine] = []
    for posting, amount in zip(entry.postings, amounts, strict=True):
        gl_account = accounts.resolve(posting.account)
        if gl_account is None:
            unmapped.add(posting.account)
        elif amount != 0:
            lines.append(GlLine(gl_account, amount, posting))
    if unmapped:
        return None  # the export goes on, to name every unmapped account at once
    if not lines:
        summary.skipped["valued at zero"] += 1
        return None
    check_balanced(entry, (line.amount for line in lines), currency)
    summary.journals += 1
    summary.lines += len(lines)
    seq = entry.seq if entry.seq is not None else number
    return GlJournal(f"TALLY-{seq}", as_utc(entry.date).date(), entry, tuple(lines))


def check_balanced(entry: JournalEntry, amounts: Iterable[Decimal], currency: str) -> None:
    total = sum(amounts, Decimal(0))
    if total != 0:
        raise UnbalancedJournal(
            f"entry {entry.key} does not balance in {currency}: off by {fmt(total)}"
        )


def _skip_reason(entry: JournalEntry, currency: str) -> str:
    if any(p.value is None or p.value_currency is None for p in entry.postings):
        return "without a value (tally unpriced)"
    others = {p.value_currency for p in entry.postings} - {currency}
    if others:
        return f"valued in {','.join(sorted(c for c in others if c))}"
    return ""


def _rounded(entry: JournalEntry, currency: str, unit: Decimal) -> list[Decimal]:
    """Each leg's value at ``unit``; a rounding remainder goes to the largest leg, and only
    when the exact values balance (an entry that does not is refused, never patched)."""
    exact = [p.value for p in entry.postings if p.value is not None]
    check_balanced(entry, exact, currency)
    rounded = [v.quantize(unit, rounding=ROUND_HALF_EVEN) for v in exact]
    remainder = -sum(rounded, Decimal(0))
    # one unit at a time to the legs rounding moved most (largest remainder), so a leg that
    # was already exact (the sale's price) keeps its amount
    step = unit if remainder > 0 else -unit
    by_error = sorted(range(len(rounded)), key=lambda i: -abs(exact[i] - rounded[i]))
    for i in by_error[: int(abs(remainder) / unit)]:
        rounded[i] += step
    return rounded
