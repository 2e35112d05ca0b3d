"""Fiat value of postings from the gateway's own quote, and the provenance each value carries.

A quote says what ``quantity`` of ``commodity`` was worth in ``currency`` for one event (an
Aurpay order's ``vs_price``; an Ebioro payment's fiat ``amount``). Each leg in the quoted
commodity is valued pro rata, each leg already in the quote's currency at its own amount, and
each value is rounded to the currency's minor unit; the rounding remainder goes to the largest
leg other than the quoted amount, so a fully valued entry's values sum to zero exactly (it
balances in the reporting view too). No quote: no value, never zero, and the entry is flagged
``no-price``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache
from typing import Any

from ledger.chain import iso_utc
from ledger.model import Posting
from ledger.precision import FIAT_MINOR_UNITS

NO_PRICE = "no-price"
VALUE_PLACES = 2  # fiat values are kept to the cent unless the currency says otherwise


@dataclass(frozen=True)
class Quote:
    value: Decimal  # what ``quantity`` units of ``commodity`` were worth in ``currency``
    currency: str
    quantity: Decimal
    commodity: str
    field: str  # provenance: which gateway field, e.g. "aurpay order.vs_price"
    quoted_at: datetime | None = None

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"value_source": self.field}
        if self.quoted_at is not None:
            meta["quoted_at"] = iso_utc(self.quoted_at)
        return meta


# A quotient can have endless digits, so the pro-rata division runs at a bounded precision (60
# digits: far finer than the cent it is rounded to); the caller's exact context would try to
# write them all. One context, called directly: building one per leg was most of the cost.
_QUOTIENT = Context(prec=60)


def _pro_rata(amount: Decimal, quote: Quote) -> Decimal:
    """amount × value ÷ quantity, each step at 60 significant digits."""
    return _QUOTIENT.divide(_QUOTIENT.multiply(amount, quote.value), quote.quantity)


@lru_cache(maxsize=64)
def _minor_unit(currency: str) -> Decimal:
    """The value's rounding unit in ``currency``: 0.01 unless the currency says otherwise."""
    return Decimal(1).scaleb(-FIAT_MINOR_UNITS.get(currency, VALUE_PLACES))


def valued(
    postings: Sequence[Posting], quote: Quote | None
) -> tuple[tuple[Posting, ...], Mapping[str, Any]]:
    """``postings`` with values from ``quote``, and the entry's meta (provenance or flag)."""
    if quote is None or quote.quantity == 0 or not postings:
        return tuple(postings), {"flags": [NO_PRICE]}
    unit = _minor_unit(quote.currency)
    values: list[Decimal | None] = []
    for posting in postings:
        if posting.currency == quote.currency:
            values.append(posting.amount)
        elif posting.currency == quote.commodity:
            values.append(_pro_rata(posting.amount, quote).quantize(unit, rounding=ROUND_HALF_EVEN))
        else:
            values.append(None)
    if any(v is None for v in values):  # a leg the quote cannot value: no value at all
        return tuple(postings), {"flags": [NO_PRICE]}
    known = [v for v in values if v is not None]
    remainder = -sum(known, Decimal(0))
    if remainder:  # to the largest leg that is not the quoted amount itself (which keeps
        # the quote exactly), else the largest leg
        legs = range(len(postings))
        candidates = [
            i
            for i in legs
            if postings[i].currency != quote.currency and abs(postings[i].amount) != quote.quantity
        ] or list(legs)
        known[max(candidates, key=lambda i: abs(known[i]))] += remainder
    # Posting(...) rather than dataclasses.replace: this runs for every leg of every entry.
    out = tuple(
        Posting(p.account, p.currency, p.amount, v, quote.currency)
        for p, v in zip(postings, known, strict=True)
    )
    return out, quote.meta()
