"""What an append lays out from: its inputs read from the database, laid out once before the
chain-head lock (a draft) and checked under the lock, so that writers in several processes do
their CPU work side by side and hold the lock only to check, re-link and write.

A draft holds when nothing it read has changed. Every ledger write moves the chain head, so a
draft whose head is still the head read nothing stale. Otherwise the inputs are read again under
the lock: when they are equal (another writer appended other objects), the draft is re-linked
after the new head (``batch.rebase``); when any differ, the append is laid out again under the
lock, as it would have been without a draft.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.engine import Connection

from ledger.model import JournalEntry, Snapshot
from ledger.precision import PrecisionTable
from ledger.storage import lookups
from ledger.storage.batch import Latest, Layout, ObjectKey, Planner, Prepared, layout, rebase


@dataclass(frozen=True)
class Inputs:
    """Everything a layout reads besides the head and the history of other objects."""

    prepared: list[Prepared]  # the records to lay out, overtaken ones removed
    latest: Mapping[ObjectKey, Latest]
    effective: Mapping[ObjectKey, JournalEntry | None]
    closed: date | None
    overtaken: frozenset[ObjectKey]


@dataclass
class Draft:
    """A layout made outside the lock, with what it read."""

    head: tuple[int, str]
    inputs: Inputs
    laid: Layout
    asked: dict[ObjectKey, tuple[int, str] | None] = field(default_factory=dict)


def read_inputs(
    conn: Connection,
    prepared: Sequence[Prepared],
    read_since: datetime | None,
    refetchable: Collection[str],
) -> Inputs:
    latest = lookups.latest_versions(conn, list(dict.fromkeys(p.object_key for p in prepared)))
    overtaken = overtaken_keys(prepared, latest, read_since, refetchable)
    kept = [p for p in prepared if p.object_key not in overtaken]
    # Only an object with a stored version can have journal entries: skip the others.
    changed = {
        p.object_key
        for p in kept
        if p.object_key in latest and latest[p.object_key].content_hash != p.content_hash
    }
    effective = lookups.effective_entries(conn, sorted(changed))
    return Inputs(kept, latest, effective, lookups.closed_through(conn), frozenset(overtaken))


def plan(
    conn: Connection,
    inputs: Inputs,
    head: tuple[int, str],
    observed_at: datetime,
    precision: PrecisionTable,
    planner: Planner,
) -> tuple[Layout, dict[ObjectKey, tuple[int, str] | None]]:
    """Lay ``inputs`` out after ``head``; also the newest stored (version, content hash) of every
    object of another append whose history the planner read (a refund reads its order's)."""
    # An object on this page that was never stored has no stored versions: no query for it
    # (on a first sync that is every object, one SELECT each under the head lock).
    fresh = {p.object_key for p in inputs.prepared} - inputs.latest.keys()
    batch = {p.object_key for p in inputs.prepared}
    asked: dict[ObjectKey, tuple[int, str] | None] = {}

    def stored_versions(key: ObjectKey) -> list[Snapshot]:
        if key in fresh:
            return []
        found = lookups.versions(conn, key)
        if key not in batch:  # the batch's own objects are checked through `latest`
            asked[key] = (found[-1].version, found[-1].content_hash) if found else None
        return found

    skip: frozenset[str] = frozenset()
    while True:  # converges: each pass only grows `skip`, bounded by the planned keys
        laid = layout(
            inputs.prepared,
            head=head,
            latest=inputs.latest,
            effective=inputs.effective,
            observed_at=observed_at,
            precision=precision,
            planner=planner,
            skip_keys=skip,
            stored_versions=stored_versions,
            closed_through=inputs.closed,
        )
        stored = lookups.stored_keys(conn, [entry.key for entry, _ in laid.journal])
        if not stored:
            laid.overtaken = sorted(inputs.overtaken)
            return laid, asked
        skip |= stored


def redeem(conn: Connection, draft: Draft, head: tuple[int, str], inputs: Inputs) -> Layout | None:
    """The draft re-linked after ``head``, another writer having moved the head since the
    draft read it, if everything the draft read is still so (``inputs``, read under the lock);
    None if anything is stale."""
    if not _same(draft.inputs, inputs):
        return None
    now = lookups.latest_versions(conn, list(draft.asked))
    for key, was in draft.asked.items():
        current = now.get(key)
        if was != (None if current is None else (current.version, current.content_hash)):
            return None
    laid = rebase(draft.laid, head)
    if lookups.stored_keys(conn, [entry.key for entry, _ in laid.journal]):
        return None  # another writer stored one of its entries: lay out again, skipping them
    return laid


def _same(a: Inputs, b: Inputs) -> bool:
    return (
        a.overtaken == b.overtaken
        and a.closed == b.closed
        and dict(a.latest) == dict(b.latest)
        and _entry_hashes(a.effective) == _entry_hashes(b.effective)
    )


def _entry_hashes(
    effective: Mapping[ObjectKey, JournalEntry | None],
) -> dict[ObjectKey, str | None]:
    return {k: None if e is None else e.entry_hash for k, e in effective.items()}


def overtaken_keys(
    prepared: Sequence[Prepared],
    latest: Mapping[ObjectKey, Latest],
    read_since: datetime | None,
    refetchable: Collection[str],
) -> set[ObjectKey]:
    """The records read before their object's latest version was appended, and differing from
    it: which of the two reads is newer is unknown, so neither wins; a fresh read decides."""
    if read_since is None:
        return set()
    found = set()
    for p in prepared:
        current = latest.get(p.object_key)
        if (
            current is not None
            and current.observed_at is not None
            and current.observed_at > read_since
            and current.content_hash != p.content_hash
            and p.object_key[1] in refetchable
        ):
            found.add(p.object_key)
    return found
