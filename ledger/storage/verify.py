"""Chain verification: recompute every content hash, entry hash and link, in seq order.

``check_chain`` is pure over two seq-ordered streams of stored rows (snapshots; journal rows
with their postings) and the head row; ``verify_store`` feeds it from the database, reading
columns as stored (no type conversion that a tampered value could crash).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, String, select, type_coerce

from ledger import chain, jsonx
from ledger.errors import ChainBroken
from ledger.journal.periods import LEDGER_SOURCE, PERIOD_CLOSE
from ledger.storage import reads
from ledger.storage.engine import read_only
from ledger.storage.reads import J, P, S
from ledger.storage.store import LedgerStore

# A stored row by column name: a plain mapping (tests) or SQLAlchemy's RowMapping, whose
# key type also admits column objects (Mapping is invariant in its key type).
Row = RowMapping | Mapping[str, Any]


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    @property
    def head(self) -> str:
        """The head as ``SEQ:HASH``: the form to publish, and to pass to ``--expect-head``."""
        return format_head(self.head_seq, self.head_hash)

    def message(self) -> str:
        if self.ok:
            return f"ledger intact: {self.entries} entries, head {self.head}"
        return f"chain broken at seq {self.broken_at}: {self.problem}"


def format_head(seq: int, entry_hash: str) -> str:
    return f"{seq}:{entry_hash}"


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` → (seq, hash); ``ValueError`` naming the expected form otherwise."""
    seq, _, entry_hash = text.strip().partition(":")
    if not seq.isascii() or not seq.isdigit() or len(entry_hash) != 64 or not _is_hex(entry_hash):
        raise ValueError(f"expected SEQ:HASH (a seq and a 64-digit hex entry hash), got {text!r}")
    return int(seq), entry_hash


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _snapshot_link(row: Row) -> tuple[dict[str, Any], str]:
    """The hashed record of a snapshot row, after checking its payload against content_hash."""
    try:
        payload = jsonx.loads(row["payload"])
    except jsonx.InvalidJSON:
        raise ChainBroken(row["seq"], "stored payload is not valid JSON") from None
    if chain.content_hash(payload) != row["content_hash"]:
        raise ChainBroken(row["seq"], "payload does not match its content hash")
    record = chain.snapshot_record(
        seq=row["seq"],
        source=row["source"],
        kind=row["kind"],
        external_id=row["external_id"],
        version=row["version"],
        observed_at=_moment(row["observed_at"]),
        content_hash=row["content_hash"],
    )
    return record, "snapshot"


def _journal_link(row: Row, postings: Sequence[Row]) -> tuple[dict[str, Any], str]:
    legs = [
        (
            p["account"],
            p["currency"],
            Decimal(str(p["amount"])),
            None if p.get("value") is None else Decimal(str(p["value"])),
            p.get("value_currency"),
        )
        for p in postings
    ]
    if [p["idx"] for p in postings] != list(range(len(postings))):
        raise ChainBroken(row["seq"], "posting numbers are not 0..n-1")
    record = chain.journal_record(
        seq=row["seq"],
        key=row["key"],
        date=_moment(row["date"]),
        description=row["description"],
        source=row["source"],
        object_kind=row["object_kind"],
        external_id=row["external_id"],
        snapshot_seq=row["snapshot_seq"],
        reverses_key=row["reverses_key"],
        postings=legs,
        recorded_at=None if row.get("recorded_at") is None else _moment(row["recorded_at"]),
        meta=jsonx.loads(row["meta"]) if row.get("meta") else None,
    )
    return record, "journal entry"


def _check_seal(row: Row) -> None:
    """A period close must seal the head it was appended on: the row just before it."""
    if row["source"] != LEDGER_SOURCE or row["kind"] != PERIOD_CLOSE:
        return
    payload = jsonx.loads(row["payload"])
    sealed = (payload.get("sealed_seq"), payload.get("sealed_hash"))
    if sealed != (row["seq"] - 1, row["prev_hash"]):
        raise ChainBroken(row["seq"], "period close does not seal the head it was appended on")


def check_chain(
    snapshots: Iterable[Row],
    journal: Iterable[tuple[Row, Sequence[Row]]],
    head: tuple[int, str],
    expect: tuple[int, str] | None = None,
) -> VerifyReport:
    """Walk both streams merged by seq; report the first broken link, or the intact head.

    ``expect`` is a head published earlier: the chain must still hold that row with that hash,
    which no rewrite of the tail (rows deleted, head row moved back) can fake.
    """
    items: Iterator[tuple[int, Row, Sequence[Row] | None]] = heapq.merge(
        ((row["seq"], row, None) for row in snapshots),
        ((row["seq"], row, postings) for row, postings in journal),
        key=lambda item: item[0],
    )
    expected, prev, count = 1, chain.GENESIS_HASH, 0
    for seq, row, postings in items:
        try:
            if seq < expected:
                raise ChainBroken(seq, "seq appears twice (snapshot and journal entry)")
            if seq > expected:
                raise ChainBroken(expected, f"row is missing (the next row is seq {seq})")
            record, what = _snapshot_link(row) if postings is None else _journal_link(row, postings)
            if postings is None:
                _check_seal(row)
            if row["prev_hash"] != prev:
                raise ChainBroken(seq, f"{what} prev_hash does not link to seq {seq - 1}")
            if chain.entry_hash(prev, record) != row["entry_hash"]:
                raise ChainBroken(seq, f"{what} does not match its entry hash (row changed)")
        except ChainBroken as broken:
            return VerifyReport(count, head[0], head[1], broken.seq, broken.problem)
        except (ValueError, ArithmeticError, TypeError) as exc:
            return VerifyReport(count, head[0], head[1], seq, f"unreadable row ({exc})")
        if expect is not None and seq == expect[0] and row["entry_hash"] != expect[1]:
            problem = f"the expected head {format_head(*expect)} is not in the ledger (rewritten)"
            return VerifyReport(count, head[0], head[1], seq, problem)
        expected, prev, count = seq + 1, row["entry_hash"], count + 1
    if head != (expected - 1, prev):
        problem = f"head row says seq {head[0]} {head[1]}, chain ends at seq {expected - 1} {prev}"
        return VerifyReport(count, head[0], head[1], head[0], problem)
    if expect is not None and expect[0] >= expected:
        problem = (
            f"the expected head {format_head(*expect)} is not in the ledger: the chain ends at "
            f"seq {expected - 1} (its tail was removed)"
        )
        return VerifyReport(count, head[0], head[1], expect[0], problem)
    return VerifyReport(count, head[0], head[1])


def verify_store(
    store: LedgerStore, *, batch: int = 1000, expect: tuple[int, str] | None = None
) -> VerifyReport:
    """Stream the whole ledger from ``store``'s database through ``check_chain``."""
    engine = read_only(store.engine)
    as_stored = {S.observed_at.name: type_coerce(S.observed_at, String)}
    snapshot_columns = [as_stored.get(c.name, c).label(c.name) for c in reads.SNAPSHOT_COLUMNS]
    as_text = {J.date.name, J.recorded_at.name, P.amount.name, P.value.name}
    journal_columns = [
        (type_coerce(c, String) if c.name in as_text else c).label(c.name) for c in J
    ]
    posting_columns = [
        (type_coerce(c, String) if c.name in as_text else c).label(c.name)
        for c in reads.POSTING_COLUMNS
    ]
    head = store.head()
    snapshots = (
        row._mapping for row in reads.keyset(engine, select(*snapshot_columns), S.seq, 0, batch)
    )
    journal_rows = reads.keyset(engine, select(*journal_columns), J.seq, 0, batch)
    journal = (
        (row._mapping, [p._mapping for p in postings])
        for row, postings in reads.with_postings(engine, journal_rows, posting_columns, batch)
    )
    return check_chain(snapshots, journal, head, expect)
