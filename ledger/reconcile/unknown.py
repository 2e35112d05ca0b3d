"""``unknown-precision``: a commodity the precision table does not know. The journal then learns
its unit from the gateway's own amounts (``ledger.journal.postings.chain_unit``) instead of
guessing; this rule reports it once per commodity (subject = the commodity), with the decimals
learned so far, until ``TALLY_CURRENCY_PRECISION`` sets it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from ledger.journal.postings import chain_unit
from ledger.model import Snapshot
from ledger.precision import PrecisionTable
from ledger.reconcile.rules import Finding

UNKNOWN_PRECISION = "unknown-precision"


def unknown_precision(
    snapshots: Iterable[Snapshot],
    precision: PrecisionTable,
    commodity: Callable[[Mapping[str, Any]], str | None],
    amounts: Callable[[Mapping[str, Any]], tuple[Decimal | None, ...]],
) -> list[Finding]:
    """One finding per unknown commodity among ``snapshots``; ``commodity`` gives a payload's
    commodity and ``amounts`` the amounts that show its decimals (read only for an unknown
    one). ``expected`` is the number of decimals learned from the amounts."""
    learned: dict[tuple[str, str], tuple[int, list[Snapshot]]] = {}
    for snapshot in snapshots:
        currency = commodity(snapshot.payload)
        if currency is None or precision.knows(currency):
            continue
        unit = chain_unit(precision, currency, *amounts(snapshot.payload))
        exponent = unit.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) else 0
        key = (snapshot.source, currency)
        seen_places, seen = learned.get(key, (0, []))
        seen.append(snapshot)
        learned[key] = (max(seen_places, places), seen)
    return [
        Finding(
            rule=UNKNOWN_PRECISION,
            source=source,
            subject_id=currency,
            currency=currency,
            expected=Decimal(places),
            actual=Decimal(places),
            difference=Decimal(0),
            tolerance=Decimal(0),
            snapshot_seqs=tuple(s.seq for s in seen[:5]),
            detail=(
                f"{currency} has no configured precision: {places} decimals learned from the "
                f"gateway's amounts; set TALLY_CURRENCY_PRECISION='{{\"{currency}\": N}}'"
            ),
        )
        for (source, currency), (places, seen) in sorted(learned.items())
    ]
