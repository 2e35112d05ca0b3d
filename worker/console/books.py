"""The ledger as the console reads it: balances (now or at a date), a balance over time, the
journal searched, one object's story, and snapshots by seq.

All through the ledger's read APIs (``LedgerStore``, ``ledger.storage.lookups.versions``, the
alert store). The journal is read as a stream: search and series fold it in one pass, constant
memory beyond what they keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger.alerts.store import AlertStore
from ledger.journal.balances import Balance, end_of_day, fold_balances, sorted_balances
from ledger.model import JournalEntry, Snapshot
from ledger.money import exact_arithmetic
from ledger.storage.engine import read_only
from ledger.storage.lookups import versions
from ledger.storage.store import LedgerStore
from ledger.timeparse import as_utc

PAGE = 50
# Fields of a payload that name another object of the same source (an Aurpay order's
# transaction and back, an Ebioro refund's payment): the story follows them one step.
LINK_FIELDS = ("order_id", "tx_id", "transaction_id", "payment_id")
EMBEDDED = ("payment",)  # an embedded object's ``id`` (an Ebioro refund's payment)


Pair = tuple[str, str]  # (account, currency)


@dataclass(frozen=True)
class Books:
    """Balances up to a date, and every pair's movement per day (for its chart): one pass."""

    balances: list[Balance]
    daily: Mapping[Pair, Mapping[date, Decimal]]

    def series(self, account: str, currency: str) -> list[tuple[date, Decimal]]:
        """The balance of ``account`` in ``currency`` at the end of each day it moved."""
        moves = self.daily.get((account, currency), {})
        running, points = Decimal(0), []
        with exact_arithmetic():
            for day in sorted(moves):
                running += moves[day]
                points.append((day, running))
        return points


def books(store: LedgerStore, at: date | None = None) -> Books:
    """Balances of the entries dated up to the end of ``at`` (UTC; all when None), and the
    daily movements of every pair over the whole journal."""
    before = end_of_day(at) if at is not None else None
    daily: dict[Pair, dict[date, Decimal]] = {}

    def each() -> Iterator[JournalEntry]:
        for entry in store.iter_journal():
            day = as_utc(entry.date).date()
            for posting in entry.postings:
                moves = daily.setdefault((posting.account, posting.currency), {})
                moves[day] = moves.get(day, Decimal(0)) + posting.amount
            yield entry

    with exact_arithmetic():
        totals = fold_balances(each(), before=before)
    return Books(sorted_balances(totals), daily)


def matches(entry: JournalEntry, query: str) -> bool:
    """``query`` (case-insensitive) in the entry's key, description, object or accounts."""
    needle = query.lower()
    fields = [entry.key, entry.description, entry.source, entry.external_id]
    fields += [p.account for p in entry.postings] + [p.currency for p in entry.postings]
    return any(needle in (text or "").lower() for text in fields)


@dataclass(frozen=True)
class JournalPage:
    entries: tuple[JournalEntry, ...]
    total: int
    page: int
    pages: int


def search(store: LedgerStore, query: str, page: int = 1, per_page: int = PAGE) -> JournalPage:
    """The entries matching ``query`` (all when empty), newest first, one page of them."""
    found = [e for e in store.iter_journal() if not query or matches(e, query)]
    found.reverse()
    pages = max(1, -(-len(found) // per_page))
    page = min(max(1, page), pages)
    chosen = found[(page - 1) * per_page : page * per_page]
    return JournalPage(tuple(chosen), len(found), page, pages)


def snapshot(store: LedgerStore, seq: int) -> Snapshot | None:
    found = next(store.iter_snapshots(seq - 1, batch=1), None)
    return found if found is not None and found.seq == seq else None


def entry(store: LedgerStore, seq: int) -> JournalEntry | None:
    found = next(store.iter_journal(seq - 1, batch=1), None)
    return found if found is not None and found.seq == seq else None


@dataclass(frozen=True)
class Moment:
    """One line of a story: what happened at ``at``."""

    at: datetime
    what: str  # version | posting | alert
    title: str
    snapshot: Snapshot | None = None
    entry: JournalEntry | None = None
    alert_id: int | None = None
    note: str | None = None
    detail: Mapping[str, Any] | None = None


def story(
    store: LedgerStore,
    alerts: AlertStore,
    source: str,
    external_id: str,
    kinds: Sequence[str],
) -> list[Moment]:
    """Every version received, every journal entry and every alert change of one object (and
    the objects its versions name), in time order."""
    snapshots = _versions(store, source, [external_id], kinds)
    linked = {i for s in snapshots for i in _named_ids(s.payload)} - {external_id}
    snapshots += _versions(store, source, sorted(linked), kinds)
    ids = {external_id, *linked}
    found = [
        Moment(
            s.observed_at,
            "version",
            f"{s.kind} {s.external_id} v{s.version} received",
            snapshot=s,
        )
        for s in snapshots
    ]
    for e in _entries(store.iter_journal(), source, ids):
        recorded = e.recorded_at or next(
            (s.observed_at for s in snapshots if s.seq == e.snapshot_seq), e.date
        )
        title = f"journal entry {e.key}" + (f" reverses {e.reverses_key}" if e.reverses_key else "")
        found.append(Moment(recorded, "posting", title, entry=e))
    for alert in alerts.alerts_for(source, sorted(ids)):
        for event in alerts.history(alert.id):
            found.append(
                Moment(
                    event.at,
                    "alert",
                    f"alert {alert.id} ({alert.rule}{'/' + alert.check if alert.check else ''}) "
                    f"{event.kind}",
                    alert_id=alert.id,
                    note=event.note,
                    detail=event.alert,
                )
            )
    order = {"version": 0, "posting": 1, "alert": 2}
    return sorted(found, key=lambda m: (as_utc(m.at), order[m.what]))


def _named_ids(payload: Mapping[str, Any]) -> Iterator[str]:
    for name in LINK_FIELDS:
        if isinstance(payload.get(name), str) and payload[name]:
            yield payload[name]
    for name in EMBEDDED:
        inner = payload.get(name)
        if isinstance(inner, Mapping) and isinstance(inner.get("id"), str) and inner["id"]:
            yield inner["id"]


def _versions(
    store: LedgerStore, source: str, ids: Iterable[str], kinds: Sequence[str]
) -> list[Snapshot]:
    found: list[Snapshot] = []
    with read_only(store.engine).connect() as conn:
        for external_id in ids:
            for kind in kinds:
                found += versions(conn, (source, kind, external_id))
    return found


def entries_for(store: LedgerStore, source: str, ids: Iterable[str]) -> list[JournalEntry]:
    """Every journal entry (reversals too) of these objects of ``source``, in seq order."""
    return list(_entries(store.iter_journal(), source, set(ids)))


def _entries(entries: Iterable[JournalEntry], source: str, ids: set[str]) -> Iterator[JournalEntry]:
    return (e for e in entries if e.source == source and e.external_id in ids)
