"""Account balances: a pure fold over journal entries, and their table and JSON forms.

The fold keeps one ``Decimal`` per (account, currency), whatever the number of entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ledger.model import JournalEntry
from ledger.money import exact_arithmetic, fmt
from ledger.timeparse import as_utc

Totals = dict[tuple[str, str], Decimal]


@dataclass(frozen=True)
class Balance:
    account: str
    currency: str
    balance: Decimal


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` in UTC: entries dated before it are "at or before" day."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def fold_balances(entries: Iterable[JournalEntry], *, before: datetime | None = None) -> Totals:
    """Sum postings per (account, currency), counting only entries dated before ``before``."""
    totals: Totals = {}
    with exact_arithmetic():  # sums of 18-decimal amounts outgrow the default 28 digits
        for entry in entries:
            if before is not None and as_utc(entry.date) >= before:
                continue
            for posting in entry.postings:
                key = (posting.account, posting.currency)
                totals[key] = totals.get(key, Decimal(0)) + posting.amount
    return totals


def sorted_balances(totals: Mapping[tuple[str, str], Decimal]) -> list[Balance]:
    """One ``Balance`` per (account, currency), sorted by account then currency."""
    return [Balance(a, c, totals[(a, c)]) for a, c in sorted(totals)]


def json_rows(balances: Iterable[Balance]) -> list[dict[str, str]]:
    return [
        {"account": b.account, "currency": b.currency, "balance": fmt(b.balance)} for b in balances
    ]


def render_table(balances: Iterable[Balance]) -> str:
    """A table for a person: columns padded, balances aligned on the decimal point."""
    rows = [(b.account, b.currency, *_split(fmt(b.balance))) for b in balances]
    account_w = max([len("ACCOUNT"), *(len(r[0]) for r in rows)])
    currency_w = max([len("CURRENCY"), *(len(r[1]) for r in rows)])
    whole_w = max([1, *(len(r[2]) for r in rows)])
    frac_w = max([0, *(len(r[3]) for r in rows)])
    balance_w = max(len("BALANCE"), whole_w + frac_w)
    pad = balance_w - whole_w - frac_w  # right-align the whole block under a wider header
    lines = [f"{'ACCOUNT':<{account_w}}  {'CURRENCY':<{currency_w}}  {'BALANCE':>{balance_w}}"]
    for account, currency, whole, frac in rows:
        number = " " * pad + f"{whole:>{whole_w}}{frac:<{frac_w}}"
        lines.append(f"{account:<{account_w}}  {currency:<{currency_w}}  {number}".rstrip())
    return "\n".join(lines) + "\n"


def _split(text: str) -> tuple[str, str]:
    """``"-1.25"`` → ``("-1", ".25")``; ``"3"`` → ``("3", "")``."""
    whole, dot, frac = text.partition(".")
    return whole, dot + frac
