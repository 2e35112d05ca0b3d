"""The Beancount export: ledger names mapped to Beancount's rules, and a two-pass writer.

Valuation: every entry is written in its own commodities, as stored (it balances per
commodity); a leg's fiat value (the gateway's quote) is its ``value`` metadata, and one
``price`` directive per commodity and day records the quote, so Fava reports balances in the
operating currency at the gateways' own prices. Entries touching suspense are flagged ``!``.

Checks the file carries, so bean-check and Fava verify the export against tally's own fold:
``balance`` assertions per account and commodity at each month's start and on the day after
each closed period; the ``noduplicates``, ``unique_prices`` and ``check_closing`` plugins (a
leg after which its account holds nothing of that commodity at the end of the day gets
``closing: TRUE``). Each entry is linked to its gateway object (``^aurpay-<order id>``), so an
order, its refund and their corrections show together. ``since`` starts the file at a date:
what came before is one opening entry (it balances by itself: every entry does).

Two passes over the entries: the first folds balances per account, commodity and day (memory
grows with accounts × commodities × active days, never with entries), the second writes the
same entries (as many as the first pass saw, so rows appended meanwhile are left out of both).

Name mapping (deterministic, documented in the functions below): an account keeps its
components and gets Beancount's capitalisation (``expenses:gateway-fees`` →
``Expenses:Gateway-Fees``); a currency that is already a valid commodity is kept as is. Any
name that would lose information by cleaning gets a short hash suffix of the original, and the
writer refuses two ledger names that map to one Beancount name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Context, Decimal, localcontext
from itertools import islice
from typing import TextIO

from ledger.chain import iso_utc
from ledger.errors import LedgerError
from ledger.journal.accounts import is_suspense
from ledger.model import JournalEntry
from ledger.money import exact_arithmetic, fmt
from ledger.timeparse import as_utc

ROOTS = {
    "assets": "Assets",
    "liabilities": "Liabilities",
    "equity": "Equity",
    "income": "Income",
    "expenses": "Expenses",
}
# Where an account whose first component is not one of the five types goes, so the file still
# loads and the odd account stays visible by name instead of being dropped.
UNMAPPED_PARENT = "Equity:Unmapped"

_COMPONENT = re.compile(r"[A-Z0-9][A-Za-z0-9-]*")
_COMMODITY = re.compile(r"[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]")  # 2 to 24 characters
_LETTER = re.compile(r"[A-Z]")
_NOT_COMPONENT_CHAR = re.compile(r"[^A-Za-z0-9-]+")
_NOT_COMMODITY_CHAR = re.compile(r"[^A-Z0-9'._-]+")
_NOT_LINK_CHAR = re.compile(r"[^A-Za-z0-9_/.-]+")
_VERSION = re.compile(r":v([0-9]+)$")

# Plugins run in this order: noduplicates sees the entries as written, before check_closing
# adds its own assertions.
PLUGINS = (
    "beancount.plugins.noduplicates",
    "beancount.plugins.unique_prices",
    "beancount.plugins.check_closing",
)
OPENING_NARRATION = "Opening balances: every entry dated before {since}"

Key = tuple[str, str]  # (ledger account, ledger currency)
Entries = Iterable[JournalEntry] | Callable[[], Iterable[JournalEntry]]


class NameClash(LedgerError, ValueError):
    """Two different ledger names map to the same Beancount name (the export stops)."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8].upper()


def _capitalise(text: str) -> str:
    return "-".join(word[:1].upper() + word[1:] for word in text.split("-"))


def account_component(text: str) -> str:
    """One component: each dash-separated word capitalised (``gateway-fees`` → ``Gateway-Fees``).

    A component with characters Beancount refuses (anything but ASCII letters, digits, dashes)
    or an empty one is cleaned to dashes and suffixed with 8 hex digits of its SHA-256, so
    ``a.b`` and ``a_b`` stay distinct (``A-B-…``).
    """
    mapped = _capitalise(text)
    if _COMPONENT.fullmatch(mapped):
        return mapped
    cleaned = _capitalise(_NOT_COMPONENT_CHAR.sub("-", text).strip("-"))
    if not cleaned[:1].isalnum():
        cleaned = "X" + cleaned
    return f"{cleaned}-{_digest(text)}"


def account_name(account: str) -> str:
    """``assets:aurpay:USDT-TRC20`` → ``Assets:Aurpay:USDT-TRC20``.

    The first component must name a Beancount account type (case-insensitive); otherwise the
    whole account goes under ``Equity:Unmapped`` (``suspense`` → ``Equity:Unmapped:Suspense``).
    """
    root, *rest = account.split(":")
    beancount_root = ROOTS.get(root.lower())
    if beancount_root is None or not rest:
        parts = [UNMAPPED_PARENT, *(account_component(c) for c in account.split(":"))]
    else:
        parts = [beancount_root, *(account_component(c) for c in rest)]
    return ":".join(parts)


def commodity_name(currency: str) -> str:
    """A valid commodity (``USDT-TRC20``, ``BTC``) is kept; anything else is mapped.

    The mapping upper-cases, turns invalid characters into ``-``, prefixes ``C`` when the name
    does not start with a letter, keeps at most 15 characters and appends ``-`` and 8 hex digits
    of the original's SHA-256: ``usdt`` → ``USDT-…``, ``1INCH`` → ``C1INCH-…``. At most 24
    characters, always starting with a letter and ending with a letter or digit.
    """
    if _COMMODITY.fullmatch(currency):
        return currency
    cleaned = _NOT_COMMODITY_CHAR.sub("-", currency.upper())
    if not _LETTER.match(cleaned):
        cleaned = "C" + cleaned
    return f"{cleaned[:15]}-{_digest(currency)}"


def link_name(source: str, external_id: str) -> str:
    """``aurpay`` + ``2025…01`` → ``aurpay-2025…01``: the gateway object an entry belongs to.

    Characters a link cannot hold become ``-`` and the link gets 8 hex digits of the original's
    SHA-256, so two objects never share a link by cleaning.
    """
    text = f"{source}-{external_id}"
    cleaned = _NOT_LINK_CHAR.sub("-", text)
    return cleaned if cleaned == text else f"{cleaned}-{_digest(text)}"


def quote(text: str) -> str:
    """A Beancount string literal: backslashes and quotes escaped, control characters spaced."""
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number(amount: Decimal) -> str:
    """The amount with every digit it was given, in plain notation (Beancount has no exponent)."""
    return fmt(amount) if amount == 0 else format(amount, "f")


@dataclass
class _Opened:
    first_use: date
    currencies: set[str] = field(default_factory=set)


@dataclass
class _Survey:
    """The first pass: balances per (account, currency) before ``since`` and per day after."""

    since: date | None
    count: int = 0
    opening: dict[Key, Decimal] = field(default_factory=dict)
    days: dict[Key, dict[date, Decimal]] = field(default_factory=dict)

    def add(self, entry: JournalEntry) -> None:
        self.count += 1
        when = as_utc(entry.date).date()
        for p in entry.postings:
            key = (p.account, p.currency)
            if self.since is not None and when < self.since:
                self.opening[key] = self.opening.get(key, Decimal(0)) + p.amount
            else:
                days = self.days.setdefault(key, {})
                days[when] = days.get(when, Decimal(0)) + p.amount

    def running(self, key: Key) -> Iterator[tuple[date, Decimal]]:
        """(day, balance at the end of that day) for each day with postings, in date order."""
        balance = self.opening.get(key, Decimal(0))
        days = self.days.get(key, {})
        for day in sorted(days):
            balance += days[day]
            yield day, balance

    def closings(self) -> set[tuple[Key, date]]:
        """The days after which an account holds nothing of a commodity it held."""
        return {
            (key, day) for key in self.days for day, balance in self.running(key) if balance == 0
        }


def _month_starts(first: date, last: date) -> Iterator[date]:
    """The 1st of each month after ``first``, through the first one after ``last``."""
    month = date(first.year, first.month, 1)
    while month <= last:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        yield month


class BeancountWriter:
    """Writes the header, then transactions as entries arrive, then the declarations, prices
    and balance assertions at the end (Beancount sorts directives by date itself)."""

    def __init__(
        self,
        out: TextIO,
        operating_currency: str = "USD",
        survey: _Survey | None = None,
        closed_through: Iterable[date] = (),
    ) -> None:
        self._out = out
        self._survey = survey or _Survey(None)
        self._closing = self._survey.closings()
        self._closed_through = sorted(set(closed_through))
        self._prices: dict[tuple[str, date], str] = {}
        self._accounts: dict[str, _Opened] = {}
        self._account_origin: dict[str, str] = {}
        self._commodities: dict[str, date] = {}
        self._commodity_origin: dict[str, str] = {}
        self._first: date | None = None
        self._last: date | None = None
        self.count = 0
        out.write(";; tally ledger export: generated, do not edit.\n\n")
        out.write(f'option "operating_currency" {quote(operating_currency)}\n')
        for plugin in PLUGINS:
            out.write(f"plugin {quote(plugin)}\n")
        out.write("\n")
        if self._survey.since is not None:
            self._write_opening(self._survey.since)

    def _seen(self, when: date) -> None:
        self._first = when if self._first is None else min(self._first, when)
        self._last = when if self._last is None else max(self._last, when)

    def _account(self, account: str, when: date, commodity: str) -> str:
        name = account_name(account)
        if self._account_origin.setdefault(name, account) != account:
            raise NameClash(
                f"accounts {self._account_origin[name]!r} and {account!r} both map to {name}"
            )
        opened = self._accounts.setdefault(name, _Opened(when))
        opened.first_use = min(opened.first_use, when)
        opened.currencies.add(commodity)
        return name

    def _commodity(self, currency: str, when: date) -> str:
        name = commodity_name(currency)
        if self._commodity_origin.setdefault(name, currency) != currency:
            raise NameClash(
                f"currencies {self._commodity_origin[name]!r} and {currency!r} both map to {name}"
            )
        self._commodities[name] = min(self._commodities.get(name, when), when)
        return name

    def _write_opening(self, since: date) -> None:
        """One entry at ``since`` carrying every balance from before it (none: no entry)."""
        legs = sorted((k, v) for k, v in self._survey.opening.items() if v != 0)
        if not legs:
            return
        self._seen(since)
        lines = [f"{since.isoformat()} * {quote(OPENING_NARRATION.format(since=since))}"]
        named = []
        for (account, currency), amount in legs:
            commodity = self._commodity(currency, since)
            named.append((self._account(account, since, commodity), amount, commodity))
        width = max(len(name) for name, _, _ in named)
        for name, amount, commodity in named:
            lines.append(f"  {name.ljust(width)}  {number(amount)} {commodity}")
        self._out.write("\n".join(lines) + "\n\n")

    def write(self, entry: JournalEntry) -> None:
        when = as_utc(entry.date).date()
        self._seen(when)
        flag = "!" if any(_suspense(p.account) for p in entry.postings) else "*"
        link = link_name(entry.source, entry.external_id)
        lines = [f"{when.isoformat()} {flag} {quote(_narration(entry))} ^{link}"]
        lines.append(f"  key: {quote(entry.key)}")
        lines.append(f"  source: {quote(entry.source)}")
        lines.append(f"  external_id: {quote(entry.external_id)}")
        lines.append(f"  snapshot_seq: {entry.snapshot_seq}")
        if entry.reverses_key:
            lines.append(f"  reverses: {quote(entry.reverses_key)}")
        if entry.recorded_at is not None:
            lines.append(f"  recorded_at: {quote(iso_utc(as_utc(entry.recorded_at)))}")
        for name in ("original_date", "value_source", "quoted_at"):
            if isinstance(entry.meta.get(name), str):
                lines.append(f"  {name}: {quote(entry.meta[name])}")
        legs = [
            (self._account(account, when, commodity), text, commodity)
            for account, text, commodity in self._legs(entry, when)
        ]
        width = max((len(account) for account, _, _ in legs), default=0)
        for account, text, _ in legs:
            lines.append(f"  {account.ljust(width)}  {text}")
        self._out.write("\n".join(lines) + "\n\n")
        self.count += 1

    def _legs(self, entry: JournalEntry, when: date) -> list[tuple[str, str, str]]:
        """(account, posting text, commodity) per leg, each in its own commodity (entries
        balance per commodity); a leg's fiat value is its ``value`` metadata, and the entry's
        quote becomes the day's ``price`` of the commodity. The first leg after which its
        account holds nothing of the commodity that day is marked ``closing``."""
        out: list[tuple[str, str, str]] = []
        for p in entry.postings:
            commodity = self._commodity(p.currency, when)
            text = f"{number(p.amount)} {commodity}"
            if p.value is not None and p.value_currency:
                fiat = self._commodity(p.value_currency, when)
                text += f"\n    value: {quote(f'{number(p.value)} {fiat}')}"
                if commodity != fiat:
                    self._price(commodity, when, p.amount, p.value, fiat)
            closing = ((p.account, p.currency), when)
            if closing in self._closing:
                self._closing.discard(closing)  # one per account, commodity and day suffices
                text += "\n    closing: TRUE"
            out.append((p.account, text, commodity))
        return out

    def _price(
        self, commodity: str, when: date, amount: Decimal, value: Decimal, fiat: str
    ) -> None:
        """The day's quote of ``commodity``, from the first valued leg of that day."""
        if amount == 0 or value == 0 or (commodity, when) in self._prices:
            return
        with localcontext(Context(prec=28)):
            rate = abs(value) / abs(amount)
        self._prices[(commodity, when)] = (
            f"{when.isoformat()} price {commodity} {number(rate.normalize())} {fiat}"
        )

    def finish(self) -> None:
        """Declare every commodity and account used, each dated at its first use; then the
        day's prices and the balance assertions."""
        for name in sorted(self._commodities):
            self._out.write(f"{self._commodities[name].isoformat()} commodity {name}\n")
            original = self._commodity_origin[name]
            if original != name:
                self._out.write(f"  currency: {quote(original)}\n")
        if self._commodities:
            self._out.write("\n")
        for key in sorted(self._prices):
            self._out.write(self._prices[key] + "\n")
        if self._prices:
            self._out.write("\n")
        for name in sorted(self._accounts):
            opened = self._accounts[name]
            currencies = ",".join(sorted(opened.currencies))
            self._out.write(f"{opened.first_use.isoformat()} open {name} {currencies}\n")
        self._write_assertions()

    def _assertion_dates(self) -> list[date]:
        """Each month's start and each closed period's next day, after the first entry."""
        if self._first is None or self._last is None:
            return []
        first, last = self._first, self._last
        ends = {through + timedelta(days=1) for through in self._closed_through}
        return sorted({*_month_starts(first, last), *(d for d in ends if d > first)})

    def _write_assertions(self) -> None:
        """``balance`` per account and commodity at each assertion date: what tally's fold
        says the account held at the start of that day (Beancount checks it before the day's
        entries)."""
        dates = self._assertion_dates()
        if not dates:
            return
        survey = self._survey
        rows: list[tuple[date, str, str, Decimal]] = []
        for key in sorted({*survey.opening, *survey.days}):
            account, currency = key
            commodity, name = commodity_name(currency), account_name(account)
            opened = self._accounts.get(name)
            if opened is None or commodity not in opened.currencies:
                continue  # nothing exported touches it (a zero balance before ``since``)
            history = list(survey.running(key))
            balance, i = survey.opening.get(key, Decimal(0)), 0
            for when in dates:
                while i < len(history) and history[i][0] < when:
                    balance = history[i][1]
                    i += 1
                if opened.first_use <= when:
                    rows.append((when, name, commodity, balance))
        self._out.write("\n")
        for when, name, commodity, balance in sorted(rows):
            self._out.write(f"{when.isoformat()} balance {name}  {number(balance)} {commodity}\n")


def _narration(entry: JournalEntry) -> str:
    """The description, with the version for a restated object (``…:v3``): an entry restated
    with the same legs on the same day must not look like a duplicate of the first."""
    found = _VERSION.search(entry.key)
    if found is None or found.group(1) == "1":
        return entry.description
    return f"{entry.description} (version {found.group(1)})"


def write_beancount(
    entries: Entries,
    out: TextIO,
    *,
    operating_currency: str = "USD",
    since: date | None = None,
    closed_through: Iterable[date] = (),
) -> int:
    """Write a complete Beancount ledger for ``entries``; return the number of transactions.

    ``entries`` is read twice: pass a callable returning a fresh iterator (a store query) to
    stream; any other iterable is held in memory for the two passes. ``since`` starts the file
    at that date (earlier entries become one opening entry); ``closed_through`` are the closed
    periods' last days, each asserted on the day after.
    """
    if callable(entries):
        read = entries
    else:
        held = list(entries)

        def read() -> Iterable[JournalEntry]:
            return held

    with exact_arithmetic():  # sums of 18-decimal amounts can pass 28 digits
        survey = _Survey(since)
        for entry in read():
            survey.add(entry)
        writer = BeancountWriter(out, operating_currency, survey, closed_through)
        for entry in islice(read(), survey.count):
            if since is None or as_utc(entry.date).date() >= since:
                writer.write(entry)
        writer.finish()
    return writer.count


def _suspense(account: str) -> bool:
    """Suspense or one of its sub-accounts (one per alert): an entry awaiting explanation."""
    return is_suspense(account)
