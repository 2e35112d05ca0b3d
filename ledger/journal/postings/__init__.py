"""The deriver registry: per (source, kind), how one snapshot version turns into postings.

A gateway adds a module here that calls ``register_deriver`` at import and is listed at the
bottom of this file; ``ledger.journal.derive`` never changes for a new gateway. Also the small,
shared helpers derivers use to read amounts strictly and to build postings.
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

_DERIVERS: dict[tuple[str, str], Deriver] = {}


def register_deriver(source: str, kind: str, fn: Deriver) -> Deriver:
    """Make ``fn`` the deriver for ``(source, kind)``; registering another one is a bug."""
    existing = _DERIVERS.get((source, kind))
    if existing is not None and existing is not fn:
        raise ValueError(f"a deriver for {source}/{kind} is already registered")
    _DERIVERS[(source, kind)] = fn
    return fn


def deriver_for(source: str, kind: str) -> Deriver:
    """The registered deriver, or ``UnpostableSnapshot`` when none is known."""
    try:
        return _DERIVERS[(source, kind)]
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


# Gateway modules register their derivers at import. Imported last: they use the names above.
from ledger.journal.postings import aurpay as aurpay  # noqa: E402
from ledger.journal.postings import ebioro as ebioro  # noqa: E402
