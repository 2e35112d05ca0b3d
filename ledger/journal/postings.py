"""The deriver contract (how one snapshot version turns into postings) and the helpers derivers
share to read amounts strictly and to build postings.

Derivers live with their gateway, outside the ledger, and reach the journal as a
``DeriverTable`` handed to the store, keyed by (source, kind): one gateway's derivers may serve
several sources (accounts), so a deriver takes the source from the snapshot it posts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from typing import Any, Protocol

from ledger.journal.accounts import SUSPENSE, residual_account
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
    """What one snapshot version should have posted: balanced postings, in a fixed order,
    dated when the economic event happened; ``meta`` says where values came from and flags
    such as ``no-price``."""

    postings: tuple[Posting, ...]
    date: datetime
    description: str
    meta: Mapping[str, Any] = field(default_factory=dict)


class History(Protocol):
    """The stored versions of an object, oldest first, including the one being derived: what a
    deriver reads to date an event by when it first appeared (a refund by the first REFUNDED
    version of its order)."""

    def versions(self, source: str, kind: str, external_id: str) -> Sequence[Snapshot]: ...


class _NoHistory:
    def versions(self, source: str, kind: str, external_id: str) -> Sequence[Snapshot]:
        return ()


NO_HISTORY: History = _NoHistory()


class Deriver(Protocol):
    """Snapshot (+ precision, + the history of related objects) → what it posts, or None."""

    def __call__(
        self, snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY, /
    ) -> Derived | None: ...


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
    if type(value) is str:
        return _parse_text(value)
    return _parse(value)


# A payload's amounts are read by its deriver, its valuation and the reconcile rules, about a
# dozen reads per object on a sync (measured: 127k reads for 9.4k objects). Text parses to one
# Decimal whatever reads it (Decimals are immutable), so the parse of a recent text is reused.
# Only exact ``str`` keys: a Decimal or int key would let ``1.0`` return the ``1.00`` seen
# before it (equal, same hash), and errors are not cached (each call raises its own).
@lru_cache(maxsize=4096)
def _parse_text(value: str) -> Decimal:
    return _parse(value)


def _parse(value: Any) -> Decimal:
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
    """The postings in the order given, lines to the same account and currency summed into the
    first, without absent or zero-amount lines."""
    merged: dict[tuple[str, str], Posting] = {}
    for posting in postings:
        if posting is None:
            continue
        key = (posting.account, posting.currency)
        seen = merged.get(key)
        merged[key] = (
            posting if seen is None else replace(seen, amount=seen.amount + posting.amount)
        )
    return tuple(p for p in merged.values() if p.amount != 0)


def split(gross: Decimal, fee: Decimal, obtained: Decimal | None) -> tuple[Decimal, Decimal]:
    """(net, unexplained difference): net = obtained, else gross − fee when obtained is absent;
    the difference gross − fee − obtained is zero when there is no obtained to compare with."""
    if obtained is None:
        return gross - fee, Decimal(0)
    return obtained, gross - fee - obtained


def residual(
    precision: PrecisionTable,
    currency: str,
    difference: Decimal,
    unit: Decimal | None = None,
    *,
    suspense: str = SUSPENSE,
) -> Posting | None:
    """The leg absorbing ``difference`` (rounding within tolerance, the object's ``suspense``
    sub-account beyond), if any. ``unit`` is the currency's learned unit when the table does
    not know it."""
    if difference == 0:
        return None
    account = residual_account(precision, currency, difference, unit, suspense)
    return Posting(account, currency, difference)


def chain_unit(precision: PrecisionTable, currency: str, *amounts: Decimal | None) -> Decimal:
    """One unit of ``currency`` on chain: the configured one, else learned from the gateway's
    own amounts (the finest digits they carry) — never guessed (inferred: a gateway writes an
    amount with no more digits than the chain holds)."""
    if precision.knows(currency):
        return precision.unit(currency)
    places = 0
    for amount in amounts:
        if amount is not None:
            exponent = amount.normalize().as_tuple().exponent
            assert isinstance(exponent, int)  # parse_amount admits finite values only
            places = max(places, -exponent)
    return Decimal(1).scaleb(-places)


def on_chain(amount: Decimal, unit: Decimal) -> tuple[Decimal, Decimal]:
    """(what a wallet can hold, the sub-unit residue): ``amount`` cut toward zero to ``unit``."""
    held = amount.quantize(unit, rounding=ROUND_DOWN)
    return held, amount - held
