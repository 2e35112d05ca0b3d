"""The deriver contract (how one snapshot version turns into postings) and the helpers derivers
share to read amounts strictly and to build postings.

Derivers live with their gateway, outside the ledger, and reach the journal as a
``DeriverTable`` handed to the store, keyed by (source, kind): one gateway's derivers may serve
several sources (accounts), so a deriver takes the source from the snapshot it posts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.journal.accounts import residual_account
from ledger.model import Posting, Snapshot
from ledger.money import InvalidAmount, to_decimal
from ledger.precision import PrecisionTable


class UnpostableSnapshot(ValueError):
    """A snapshot the journal cannot derive (bad amount, no currency, unknown kind)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Derived:
    """What one snapshot version should have posted: balanced postings, in a fixed order."""

    postings: tuple[Posting, ...]
    date: datetime
    description: str


Deriver = Callable[[Snapshot, PrecisionTable], Derived | None]
DeriverTable = Mapping[tuple[str, str], Deriver]  # (source, kind) → deriver


def deriver_for(derivers: DeriverTable, source: str, kind: str) -> Deriver:
    """The deriver for ``(source, kind)``, or ``UnpostableSnapshot`` when there is none."""
    try:
        return derivers[(source, kind)]
    except KeyError:
        raise UnpostableSnapshot(f"no journal deriver for {source}/{kind}") from None


# Exact arithmetic grows digits as needed, so "1E+999999999" would exhaust memory; no real
# amount comes near these bounds (10^40 units, 10^-60 of a unit).
_MAX_ADJUSTED = 40
_MIN_EXPONENT = -60


def parse_amount(value: Any) -> Decimal:
    """``ledger.money.to_decimal`` plus a sanity range; raises ``InvalidAmount``."""
    amount = to_decimal(value)
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # to_decimal admits finite values only
    if amount.adjusted() > _MAX_ADJUSTED or exponent < _MIN_EXPONENT:
        raise InvalidAmount(f"amount out of range: {value!r}")
    return amount


def read_amount(payload: Mapping[str, Any], name: str) -> Decimal | None:
    """``payload[name]`` as an exact Decimal; None when absent or null; raises when malformed."""
    value = payload.get(name)
    if value is None:
        return None
    try:
        return parse_amount(value)
    except InvalidAmount as exc:
        raise UnpostableSnapshot(f"{name}: {exc}") from None


def read_currency(payload: Mapping[str, Any], name: str = "currency") -> str:
    """The payload's currency code, upper-cased; raises when missing or not a string."""
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise UnpostableSnapshot(f"{name}: missing currency")
    return value.strip().upper()


def legs(*postings: Posting | None) -> tuple[Posting, ...]:
    """The postings in the order given, without absent or zero-amount lines."""
    return tuple(p for p in postings if p is not None and p.amount != 0)


def split(gross: Decimal, fee: Decimal, obtained: Decimal | None) -> tuple[Decimal, Decimal]:
    """(net, unexplained difference): net = obtained, else gross − fee when obtained is absent;
    the difference gross − fee − obtained is zero when there is no obtained to compare with."""
    if obtained is None:
        return gross - fee, Decimal(0)
    return obtained, gross - fee - obtained


def residual(precision: PrecisionTable, currency: str, difference: Decimal) -> Posting | None:
    """The leg absorbing ``difference`` (rounding within tolerance, suspense beyond), if any."""
    if difference == 0:
        return None
    return Posting(residual_account(precision, currency, difference), currency, difference)
