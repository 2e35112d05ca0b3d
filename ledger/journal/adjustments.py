"""Manual adjusting entries (``tally adjust``, an alert written off): tally's own records in the
chain, a snapshot of source ``tally``, kind ``adjustment``, whose payload is the entry asked for
(postings, reason, author, date) and whose journal entry is exactly that, balanced per commodity.

The payload is the request as made, so the chain keeps who asked for what and why; the journal
entry is derived from it like any other, dated in the open period (a date in a closed period
moves to the first open day) and shown in exports with its author and reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from ledger.journal.periods import LEDGER_SOURCE
from ledger.journal.postings import NO_HISTORY, Derived, History, UnpostableSnapshot, parse_amount
from ledger.model import Posting, RawRecord, Snapshot
from ledger.money import InvalidAmount, exact_arithmetic, fmt
from ledger.precision import PrecisionTable

ADJUSTMENT = "adjustment"
MAX_ACCOUNT = 255


def adjustment_record(
    adjustment_id: str,
    postings: Sequence[tuple[str, str, Decimal]],
    *,
    reason: str,
    author: str,
    on: date,
    alert_id: int | None = None,
) -> RawRecord:
    """The record ``tally adjust`` appends; raises ``UnpostableSnapshot`` (one line) when the
    entry would not post: fewer than two legs, a bad account or amount, or out of balance."""
    payload: dict[str, Any] = {
        "id": adjustment_id,
        "date": on.isoformat(),
        "reason": reason,
        "author": author,
        "postings": [[account, currency, fmt(amount)] for account, currency, amount in postings],
    }
    if alert_id is not None:
        payload["alert_id"] = alert_id
    record = RawRecord(LEDGER_SOURCE, ADJUSTMENT, adjustment_id, payload)
    _legs(payload)  # refuse now what the journal would refuse later
    return record


def _legs(payload: Mapping[str, Any]) -> tuple[Posting, ...]:
    raw = payload.get("postings")
    if not isinstance(raw, list) or len(raw) < 2:
        raise UnpostableSnapshot("an adjustment needs at least two postings")
    legs: list[Posting] = []
    for leg in raw:
        if not isinstance(leg, list) or len(leg) != 3:
            raise UnpostableSnapshot("a posting is [account, currency, amount]")
        account, currency, amount = leg
        if not isinstance(account, str) or not account.strip() or len(account) > MAX_ACCOUNT:
            raise UnpostableSnapshot(f"not an account: {account!r}")
        if not isinstance(currency, str) or not currency.strip():
            raise UnpostableSnapshot(f"not a currency: {currency!r}")
        try:
            value = parse_amount(amount)
        except InvalidAmount as exc:
            raise UnpostableSnapshot(f"amount {amount!r}: {exc}") from None
        legs.append(Posting(account.strip(), currency.strip().upper(), value))
    with exact_arithmetic():
        totals: dict[str, Decimal] = {}
        for leg in legs:
            totals[leg.currency] = totals.get(leg.currency, Decimal(0)) + leg.amount
    off = sorted(f"{cur} {fmt(total)}" for cur, total in totals.items() if total != 0)
    if off:
        raise UnpostableSnapshot(f"the adjustment does not balance: {', '.join(off)}")
    return tuple(legs)


def derive_adjustment(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY, /
) -> Derived | None:
    """The adjusting entry exactly as asked, dated at the start of its day (UTC)."""
    payload = snapshot.payload
    legs = _legs(payload)
    try:
        on = date.fromisoformat(str(payload.get("date")))
    except ValueError:
        raise UnpostableSnapshot("date: not YYYY-MM-DD") from None
    reason, author = str(payload.get("reason", "")), str(payload.get("author", ""))
    meta: dict[str, Any] = {"author": author, "reason": reason}
    if isinstance(payload.get("alert_id"), int):
        meta["alert_id"] = payload["alert_id"]
    description = f"Adjustment {snapshot.external_id}: {reason} (by {author})"
    return Derived(legs, datetime.combine(on, time(), tzinfo=UTC), description, meta)
