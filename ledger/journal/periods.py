"""Period close: the books are closed through a date, and nothing dated in a closed period is
ever appended again. Pure: the store reads the latest close and applies these rules.

A close is tally's own record in the chain: a snapshot of source ``tally``, kind
``period-close``, external id the ``through`` date, whose payload seals the chain head at the
moment of closing. An entry whose effective date falls on or before the closed date is booked
on the first open day instead, keeping its effective date as ``meta["original_date"]``, so a
balance at a closed date never changes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ledger.chain import iso_utc
from ledger.model import JournalEntry, Snapshot
from ledger.timeparse import as_utc

LEDGER_SOURCE = "tally"  # tally's own records in the chain (closes, adjustments)
PERIOD_CLOSE = "period-close"


class CloseRefused(ValueError):
    """A close that would rewrite history: twice, backwards, or into the future."""


@dataclass(frozen=True)
class PeriodClose:
    through: date
    closed_at: datetime
    sealed_seq: int
    sealed_hash: str
    note: str
    seq: int  # the close's own place in the chain


def first_open_instant(closed_through: date) -> datetime:
    """The first instant after the closed period: 00:00 UTC of the day after ``through``."""
    return datetime.combine(closed_through + timedelta(days=1), time(), tzinfo=UTC)


def defer_into_open_period(entry: JournalEntry, closed_through: date | None) -> JournalEntry:
    """``entry`` as booked: unchanged in the open period, else on the first open day."""
    if closed_through is None:
        return entry
    opens = first_open_instant(closed_through)
    if as_utc(entry.date) >= opens:
        return entry
    meta = {**entry.meta, "original_date": iso_utc(as_utc(entry.date))}
    return replace(entry, date=opens, meta=meta)


def close_payload(
    through: date, closed_at: datetime, head: tuple[int, str], note: str
) -> dict[str, Any]:
    """The payload of a close snapshot: what was closed, when, and the head it seals."""
    return {
        "through": through.isoformat(),
        "closed_at": iso_utc(as_utc(closed_at)),
        "sealed_seq": head[0],
        "sealed_hash": head[1],
        "note": note,
    }


def read_close(snapshot: Snapshot) -> PeriodClose:
    payload: Mapping[str, Any] = snapshot.payload
    return PeriodClose(
        through=date.fromisoformat(str(payload["through"])),
        closed_at=datetime.fromisoformat(str(payload["closed_at"]).replace("Z", "+00:00")),
        sealed_seq=int(payload["sealed_seq"]),
        sealed_hash=str(payload["sealed_hash"]),
        note=str(payload.get("note", "")),
        seq=snapshot.seq,
    )


def check_close(through: date, closed: Iterable[date], today: date) -> None:
    """Refuse a close that is not strictly after every earlier one and before ``today``."""
    latest = max(closed, default=None)
    if latest is not None and through == latest:
        raise CloseRefused(f"the books are already closed through {through.isoformat()}")
    if latest is not None and through < latest:
        raise CloseRefused(
            f"cannot close through {through.isoformat()}: the books are closed through "
            f"{latest.isoformat()} already (a close never moves backwards)"
        )
    if through >= today:
        raise CloseRefused(
            f"cannot close through {through.isoformat()}: only days before today "
            f"({today.isoformat()}, UTC) can be closed"
        )
