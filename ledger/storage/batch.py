"""Lay out one append: which records become new versions, which journal entries are new, and
the hash links of every row. Pure: the store reads the inputs and writes the outputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger import chain, jsonx
from ledger.errors import InexactAmount, InvalidEntry
from ledger.journal.periods import defer_into_open_period
from ledger.journal.postings import History, UnpostableSnapshot
from ledger.model import JournalEntry, RawRecord, Snapshot
from ledger.precision import PrecisionTable
from ledger.storage.types import check_amount

ObjectKey = tuple[str, str, str]  # (source, kind, external_id)
Planner = Callable[[Snapshot, JournalEntry | None, PrecisionTable, History], list[JournalEntry]]
StoredVersions = Callable[[ObjectKey], Sequence[Snapshot]]  # the store's versions of an object


@dataclass(frozen=True)
class Prepared:
    """A record with its stored text and content hash, computed before taking the lock."""

    record: RawRecord
    object_key: ObjectKey
    payload_text: str
    content_hash: str


@dataclass(frozen=True)
class Latest:
    version: int
    content_hash: str
    observed_at: datetime | None = None  # when it was appended (None: placed by this append)


@dataclass
class Layout:
    """The rows one append writes, in seq order, and where the chain head ends up."""

    snapshots: list[Snapshot] = field(default_factory=list)
    payload_texts: list[str] = field(default_factory=list)  # one per snapshot, as stored
    journal: list[tuple[JournalEntry, str]] = field(default_factory=list)  # (entry, object_kind)
    unpostable: list[tuple[Snapshot, str]] = field(default_factory=list)  # (snapshot, reason)
    unchanged: int = 0
    overtaken: list[ObjectKey] = field(default_factory=list)  # not stored: read too early
    base: tuple[int, str] = (0, chain.GENESIS_HASH)  # the head before the append
    head: tuple[int, str] = (0, chain.GENESIS_HASH)  # the head after it

    def snapshot_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "seq": s.seq,
                "source": s.source,
                "kind": s.kind,
                "external_id": s.external_id,
                "version": s.version,
                "observed_at": s.observed_at,
                "payload": text,
                "content_hash": s.content_hash,
                "prev_hash": s.prev_hash,
                "entry_hash": s.entry_hash,
            }
            for s, text in zip(self.snapshots, self.payload_texts, strict=True)
        ]

    def journal_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "seq": e.seq,
                "key": e.key,
                "date": e.date,
                "description": e.description,
                "source": e.source,
                "object_kind": kind,
                "external_id": e.external_id,
                "snapshot_seq": e.snapshot_seq,
                "reverses_key": e.reverses_key,
                "prev_hash": e.prev_hash,
                "entry_hash": e.entry_hash,
                "recorded_at": e.recorded_at,
                "meta": meta_text(e.meta),
            }
            for e, kind in self.journal
        ]

    def posting_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "journal_seq": e.seq,
                "idx": i,
                "account": p.account,
                "currency": p.currency,
                "amount": p.amount,
                "value": p.value,
                "value_currency": p.value_currency,
            }
            for e, _ in self.journal
            for i, p in enumerate(e.postings)
        ]


def meta_text(meta: Mapping[str, Any]) -> str | None:
    """An entry's metadata as stored: canonical JSON, or NULL when there is none."""
    return jsonx.canonical(dict(meta)).decode("utf-8") if meta else None


class _BatchHistory:
    """An object's versions as the deriver sees them mid-append: stored ones, then those placed
    earlier in this batch (an order and its refund can arrive in one page)."""

    def __init__(self, stored: StoredVersions) -> None:
        self._stored = stored
        self._cache: dict[ObjectKey, list[Snapshot]] = {}
        self._batch: dict[ObjectKey, list[Snapshot]] = defaultdict(list)

    def versions(self, source: str, kind: str, external_id: str) -> Sequence[Snapshot]:
        key = (source, kind, external_id)
        if key not in self._cache:  # the stored rows; this batch's are not written yet
            self._cache[key] = list(self._stored(key))
        return [*self._cache[key], *self._batch.get(key, ())]

    def placed(self, snapshot: Snapshot) -> None:
        self._batch[(snapshot.source, snapshot.kind, snapshot.external_id)].append(snapshot)


def _exact(value: Any) -> bool:
    """True if ``value`` holds only what ``jsonx.loads`` produces: no float, no NaN/Infinity.

    Runs on every payload of every append, so it checks types first and builds no paths.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is Decimal:
        return bool(value.is_finite())
    if isinstance(value, Mapping):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return not isinstance(value, float)
    for item in value:  # noqa: SIM110 - a plain loop is measurably faster than all() here
        if not _exact(item):
            return False
    return True


def prepare(record: RawRecord) -> Prepared:
    if not _exact(record.payload):
        raise InvalidEntry(
            f"payload of {record.source}/{record.kind}/{record.external_id} holds a float or a "
            "non-finite number; parse provider JSON with ledger.jsonx.loads"
        )
    key = (record.source, record.kind, record.external_id)
    return Prepared(record, key, jsonx.dumps(record.payload), chain.content_hash(record.payload))


def check_entry(entry: JournalEntry, snapshot: Snapshot) -> None:
    """The store's last guard on what a planner returns: its own object, exact and balanced."""
    if (entry.source, entry.external_id, entry.snapshot_seq) != (
        snapshot.source,
        snapshot.external_id,
        snapshot.seq,
    ):
        raise InvalidEntry(
            f"journal entry {entry.key!r} does not belong to snapshot {snapshot.seq} "
            f"({snapshot.source}/{snapshot.kind}/{snapshot.external_id})"
        )
    if entry.date.tzinfo is None or entry.date.utcoffset() is None:
        raise InvalidEntry(f"journal entry {entry.key!r} has a naive date")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for posting in entry.postings:
        totals[posting.currency] += check_amount(posting.amount)
        if posting.value is not None:
            check_amount(posting.value)
    unbalanced = sorted(currency for currency, total in totals.items() if total != 0)
    if unbalanced:
        raise InvalidEntry(f"journal entry {entry.key!r} does not balance in {unbalanced}")


def _snapshot_hash(
    prev: str, seq: int, key: ObjectKey, version: int, observed_at: datetime, content_hash: str
) -> str:
    source, kind, external_id = key
    return chain.snapshot_entry_hash(
        prev,
        seq=seq,
        source=source,
        kind=kind,
        external_id=external_id,
        version=version,
        observed_at=observed_at,
        content_hash=content_hash,
    )


def _link_snapshot(
    item: Prepared, version: int, observed_at: datetime, seq: int, prev: str
) -> Snapshot:
    source, kind, external_id = item.object_key
    return Snapshot(
        seq=seq,
        source=source,
        kind=kind,
        external_id=external_id,
        version=version,
        observed_at=observed_at,
        content_hash=item.content_hash,
        prev_hash=prev,
        entry_hash=_snapshot_hash(
            prev, seq, item.object_key, version, observed_at, item.content_hash
        ),
        payload=item.record.payload,
    )


def _link_journal(entry: JournalEntry, object_kind: str, seq: int, prev: str) -> JournalEntry:
    record = chain.journal_record(
        seq=seq,
        key=entry.key,
        date=entry.date,
        description=entry.description,
        source=entry.source,
        object_kind=object_kind,
        external_id=entry.external_id,
        snapshot_seq=entry.snapshot_seq,
        reverses_key=entry.reverses_key,
        postings=[
            (p.account, p.currency, p.amount, p.value, p.value_currency) for p in entry.postings
        ],
        recorded_at=entry.recorded_at,
        meta=entry.meta,
    )
    return replace(entry, seq=seq, prev_hash=prev, entry_hash=chain.entry_hash(prev, record))


def layout(
    prepared: Sequence[Prepared],
    *,
    head: tuple[int, str],
    latest: Mapping[ObjectKey, Latest],
    effective: Mapping[ObjectKey, JournalEntry | None],
    observed_at: datetime,
    precision: PrecisionTable,
    planner: Planner,
    skip_keys: frozenset[str] = frozenset(),
    stored_versions: StoredVersions = lambda key: (),
    closed_through: date | None = None,
) -> Layout:
    """Place every new snapshot and journal entry after ``head``.

    A record whose content equals the object's latest version (stored, or earlier in this
    batch) is unchanged. Each new snapshot is planned against the object's effective entry,
    which the entries placed so far in this batch update. Entries whose key is in
    ``skip_keys`` (already stored) or was placed earlier in the batch are dropped. A snapshot
    the planner cannot post (``UnpostableSnapshot``, an amount finer than 18 places) is kept
    without entries and listed in ``unpostable`` for quarantine. Every entry is recorded at
    ``observed_at``; one dated on or before ``closed_through`` moves to the first open day.
    """
    seq, prev = head
    out = Layout(base=head, head=head)
    latest = dict(latest)
    effective = dict(effective)
    placed_keys: set[str] = set()
    history = _BatchHistory(stored_versions)
    for item in prepared:
        key = item.object_key
        current = latest.get(key)
        if current is not None and current.content_hash == item.content_hash:
            out.unchanged += 1
            continue
        version = current.version + 1 if current else 1
        seq += 1
        snapshot = _link_snapshot(item, version, observed_at, seq, prev)
        out.snapshots.append(snapshot)
        out.payload_texts.append(item.payload_text)
        prev = snapshot.entry_hash
        latest[key] = Latest(version, item.content_hash)
        history.placed(snapshot)
        try:
            planned = [
                defer_into_open_period(replace(entry, recorded_at=observed_at), closed_through)
                for entry in planner(snapshot, effective.get(key), precision, history)
            ]
            for entry in planned:
                check_entry(entry, snapshot)
        except (UnpostableSnapshot, InexactAmount) as exc:
            # The snapshot is the provider's word and is kept; its journal waits in quarantine.
            out.unpostable.append((snapshot, str(exc)))
            continue
        for entry in planned:
            if entry.key in skip_keys or entry.key in placed_keys:
                continue
            seq += 1
            linked = _link_journal(entry, snapshot.kind, seq, prev)
            assert linked.entry_hash is not None
            out.journal.append((linked, snapshot.kind))
            placed_keys.add(entry.key)
            prev = linked.entry_hash
            effective[key] = None if linked.reverses_key else linked
    out.head = (seq, prev)
    return out


def rebase(laid: Layout, head: tuple[int, str]) -> Layout:
    """``laid`` placed after ``head`` instead of ``laid.base``: every seq moved by the same
    amount (an entry's ``snapshot_seq`` with its snapshot) and every hash link recomputed.

    Equal to laying the same inputs out after ``head``: a planner sees a snapshot's seq only to
    name it as its entries' ``snapshot_seq`` (``check_entry`` holds it to that).
    """
    if head == laid.base:
        return laid
    shift = head[0] - laid.base[0]
    rows: list[tuple[int, Snapshot | tuple[JournalEntry, str]]] = [
        (s.seq, s) for s in laid.snapshots
    ]
    for entry, kind in laid.journal:
        assert entry.seq is not None  # every laid-out entry has its place
        rows.append((entry.seq, (entry, kind)))
    rows.sort(key=lambda row: row[0])
    seq, prev = head
    out = Layout(
        payload_texts=laid.payload_texts,
        unchanged=laid.unchanged,
        overtaken=laid.overtaken,
        base=head,
    )
    moved: dict[int, Snapshot] = {}
    for old_seq, row in rows:
        seq += 1
        if isinstance(row, Snapshot):
            key = (row.source, row.kind, row.external_id)
            entry_hash = _snapshot_hash(
                prev, seq, key, row.version, row.observed_at, row.content_hash
            )
            snapshot = replace(row, seq=seq, prev_hash=prev, entry_hash=entry_hash)
            moved[old_seq] = snapshot
            out.snapshots.append(snapshot)
            prev = snapshot.entry_hash
        else:
            entry, kind = row
            entry = replace(entry, snapshot_seq=entry.snapshot_seq + shift)
            linked = _link_journal(entry, kind, seq, prev)
            assert linked.entry_hash is not None
            out.journal.append((linked, kind))
            prev = linked.entry_hash
    out.unpostable = [(moved[s.seq], reason) for s, reason in laid.unpostable]
    out.head = (seq, prev)
    return out
