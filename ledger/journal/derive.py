"""Double-entry journal derivation: which entries a new snapshot version adds to the ledger.

Pure and deterministic: the same snapshot and effective entry always plan the same keys, dates,
descriptions and postings, so the store's idempotency keys make replays harmless. Corrections
never edit: a changed version reverses the effective entry and posts the new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from ledger.journal.adjustments import ADJUSTMENT, derive_adjustment
from ledger.journal.periods import LEDGER_SOURCE, PERIOD_CLOSE
from ledger.journal.postings import (
    NO_HISTORY,
    Derived,
    Deriver,
    DeriverTable,
    History,
    UnpostableSnapshot,
    deriver_for,
)
from ledger.model import JournalEntry, Posting, Snapshot
from ledger.money import exact_arithmetic, fmt
from ledger.precision import PrecisionTable
from ledger.timeparse import as_utc

__all__ = [
    "Derived",
    "DeriverTable",
    "UnbalancedEntry",
    "UnpostableSnapshot",
    "balances",
    "check_balanced",
    "entry_key",
    "journal_planner",
    "plan_entries",
]

# What the store calls for each new snapshot: (snapshot, effective entry, precision, history)
# → entries.
JournalPlanner = Callable[
    [Snapshot, JournalEntry | None, PrecisionTable, History], list[JournalEntry]
]


def _posts_nothing(
    snapshot: Snapshot, precision: PrecisionTable, history: History = NO_HISTORY, /
) -> Derived | None:
    return None


# tally's own records in the chain, whatever gateways are configured: a period close posts
# nothing itself (it changes where later entries are dated); an adjustment posts what it asks.
LEDGER_DERIVERS: dict[tuple[str, str], Deriver] = {
    (LEDGER_SOURCE, PERIOD_CLOSE): _posts_nothing,
    (LEDGER_SOURCE, ADJUSTMENT): derive_adjustment,
}


class UnbalancedEntry(ValueError):
    """An entry whose postings do not sum to zero per currency (a bug, never data)."""


def entry_key(snapshot: Snapshot) -> str:
    """The natural idempotency key of the entry a snapshot version posts."""
    return f"{snapshot.source}:{snapshot.kind}:{snapshot.external_id}:v{snapshot.version}"


def plan_entries(
    snapshot: Snapshot,
    effective: JournalEntry | None,
    precision: PrecisionTable,
    derivers: DeriverTable,
    history: History = NO_HISTORY,
) -> list[JournalEntry]:
    """The entries to append for ``snapshot``, given the object's currently effective entry.

    Same postings as ``effective`` → nothing. Otherwise a reversal of ``effective`` (if any),
    then the new entry (if this version posts anything). Raises ``UnpostableSnapshot`` when
    ``derivers`` has none for (source, kind) or the payload cannot be derived, and
    ``UnbalancedEntry`` if a deriver ever broke the balance.
    """
    return _plan_with({**LEDGER_DERIVERS, **derivers}, snapshot, effective, precision, history)


def journal_planner(derivers: DeriverTable) -> JournalPlanner:
    """``plan_entries`` bound to ``derivers``: the planner a ``LedgerStore`` appends with."""
    # A snapshot of the table, merged with the ledger's own once (not per snapshot): later
    # edits to the caller's copy don't leak.
    table = {**LEDGER_DERIVERS, **derivers}

    def planner(
        snapshot: Snapshot,
        effective: JournalEntry | None,
        precision: PrecisionTable,
        history: History = NO_HISTORY,
    ) -> list[JournalEntry]:
        return _plan_with(table, snapshot, effective, precision, history)

    return planner


def _plan_with(
    table: DeriverTable,
    snapshot: Snapshot,
    effective: JournalEntry | None,
    precision: PrecisionTable,
    history: History,
) -> list[JournalEntry]:
    deriver = deriver_for(table, snapshot.source, snapshot.kind)
    with exact_arithmetic():
        return _plan(snapshot, effective, deriver(snapshot, precision, history))


def _plan(
    snapshot: Snapshot, effective: JournalEntry | None, derived: Derived | None
) -> list[JournalEntry]:
    desired = derived.postings if derived is not None else ()
    current = effective.postings if effective is not None else ()
    if _same_postings(desired, current):
        return []
    planned: list[JournalEntry] = []
    if effective is not None:
        planned.append(_reversal(effective, snapshot, derived))
    if derived is not None:
        planned.append(
            JournalEntry(
                key=entry_key(snapshot),
                date=as_utc(derived.date),
                description=derived.description,
                source=snapshot.source,
                external_id=snapshot.external_id,
                snapshot_seq=snapshot.seq,
                postings=derived.postings,
                meta=derived.meta,
            )
        )
    for entry in planned:
        check_balanced(entry)
    return planned


def _reversal(effective: JournalEntry, snapshot: Snapshot, derived: Derived | None) -> JournalEntry:
    """Negate ``effective``. Dated like its replacement (or when the change was observed),
    never before the entry it reverses."""
    changed_at = as_utc(derived.date if derived is not None else snapshot.observed_at)
    return JournalEntry(
        key=f"{effective.key}:reversal@v{snapshot.version}",
        date=max(changed_at, as_utc(effective.date)),
        description=f"Reversal of {effective.key} (superseded by version {snapshot.version})",
        source=snapshot.source,
        external_id=snapshot.external_id,
        snapshot_seq=snapshot.seq,
        postings=tuple(_negated(p) for p in effective.postings),
        reverses_key=effective.key,
    )


def _negated(posting: Posting) -> Posting:
    value = None if posting.value is None else -posting.value
    return Posting(
        posting.account, posting.currency, -posting.amount, value, posting.value_currency
    )


def _same_postings(a: Sequence[Posting], b: Sequence[Posting]) -> bool:
    """Equal as multisets of (account, currency, amount, value, value currency); ``1.0`` and
    ``1.00`` are the same."""
    if len(a) != len(b):  # e.g. an object's first version, against no entry: no need to format
        return False

    def shape(postings: Iterable[Posting]) -> Counter[tuple[str, str, str, str, str]]:
        return Counter(
            (
                p.account,
                p.currency,
                fmt(p.amount),
                "" if p.value is None else fmt(p.value),
                p.value_currency or "",
            )
            for p in postings
        )

    return shape(a) == shape(b)


def balances(postings: Iterable[Posting]) -> dict[str, Decimal]:
    """The exact sum of ``postings`` per currency."""
    totals: dict[str, Decimal] = {}
    with exact_arithmetic():
        for posting in postings:
            totals[posting.currency] = totals.get(posting.currency, Decimal(0)) + posting.amount
    return totals


def check_balanced(entry: JournalEntry) -> JournalEntry:
    """Return ``entry`` if it has postings summing to zero per currency, else raise."""
    if not entry.postings:
        raise UnbalancedEntry(f"entry {entry.key} has no postings")
    off = {cur: total for cur, total in balances(entry.postings).items() if total != 0}
    if off:
        detail = ", ".join(f"{cur} {fmt(total)}" for cur, total in sorted(off.items()))
        raise UnbalancedEntry(f"entry {entry.key} does not balance: {detail}")
    return entry
