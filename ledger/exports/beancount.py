"""The Beancount export: ledger names mapped to Beancount's rules, and a streaming writer.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TextIO

from ledger.errors import LedgerError
from ledger.model import JournalEntry
from ledger.money import fmt
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


class BeancountWriter:
    """Writes transactions as entries arrive, then ``open``/``commodity`` directives at the end.

    Beancount sorts directives by date itself, so declaring accounts after their use is valid;
    what the writer remembers is per account and per commodity, never per entry.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._accounts: dict[str, _Opened] = {}
        self._account_origin: dict[str, str] = {}
        self._commodities: dict[str, date] = {}
        self._commodity_origin: dict[str, str] = {}
        self.count = 0
        out.write(";; tally ledger export: generated, do not edit.\n\n")

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

    def write(self, entry: JournalEntry) -> None:
        when = as_utc(entry.date).date()
        lines = [f"{when.isoformat()} * {quote(entry.description)}"]
        lines.append(f"  key: {quote(entry.key)}")
        lines.append(f"  source: {quote(entry.source)}")
        lines.append(f"  external_id: {quote(entry.external_id)}")
        lines.append(f"  snapshot_seq: {entry.snapshot_seq}")
        if entry.reverses_key:
            lines.append(f"  reverses: {quote(entry.reverses_key)}")
        legs = []
        for posting in entry.postings:
            commodity = self._commodity(posting.currency, when)
            legs.append(
                (self._account(posting.account, when, commodity), posting.amount, commodity)
            )
        width = max((len(account) for account, _, _ in legs), default=0)
        for account, amount, commodity in legs:
            lines.append(f"  {account.ljust(width)}  {number(amount)} {commodity}")
        self._out.write("\n".join(lines) + "\n\n")
        self.count += 1

    def finish(self) -> None:
        """Declare every commodity and account used, each dated at its first use."""
        for name in sorted(self._commodities):
            self._out.write(f"{self._commodities[name].isoformat()} commodity {name}\n")
            original = self._commodity_origin[name]
            if original != name:
                self._out.write(f"  currency: {quote(original)}\n")
        if self._commodities:
            self._out.write("\n")
        for name in sorted(self._accounts):
            opened = self._accounts[name]
            currencies = ",".join(sorted(opened.currencies))
            self._out.write(f"{opened.first_use.isoformat()} open {name} {currencies}\n")


def write_beancount(entries: Iterable[JournalEntry], out: TextIO) -> int:
    """Write a complete Beancount ledger for ``entries``; return the number of transactions."""
    writer = BeancountWriter(out)
    for entry in entries:
        writer.write(entry)
    writer.finish()
    return writer.count
