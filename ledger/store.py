"""The append-only ledger store: one transaction per append, one global hash chain.

There is no update or delete API. ``append`` hashes payloads before taking the chain-head lock
(PostgreSQL ``SELECT … FOR UPDATE``, SQLite ``BEGIN IMMEDIATE``), then inside it reads what it
must (latest versions, effective entries, known keys) in a few batched queries, lays the rows
out with ``ledger.batch.layout`` and writes them with executemany. Unique constraints refuse a
duplicate version or key even if the lock were bypassed; any failure rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ledger import chain, jsonx, lookups, reads
from ledger.batch import Layout, Planner, Prepared, layout, prepare
from ledger.db import read_only
from ledger.errors import LedgerError
from ledger.model import JournalEntry, RawRecord, Rejected, Snapshot
from ledger.precision import PrecisionTable
from ledger.reads import J, P, S
from ledger.tables import LedgerHead, SyncQuarantine

HEAD = LedgerHead.__table__  # type: ignore[attr-defined]
H = HEAD.c
QUARANTINE = SyncQuarantine.__table__  # type: ignore[attr-defined]

__all__ = ["AppendResult", "LedgerStore", "Planner"]


@dataclass(frozen=True)
class AppendResult:
    new_snapshots: tuple[Snapshot, ...]
    journal_entries: int
    quarantined: int
    unchanged: int


def _raw_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    try:
        return jsonx.dumps(raw)
    except (TypeError, ValueError):
        return repr(raw)


def _quarantine_row(
    source: str,
    kind: str,
    external_id: str | None,
    reason: str,
    raw: str,
    run_id: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "source": source,
        "kind": kind,
        "external_id": external_id,
        "reason": reason,
        "raw": raw,
        "run_id": run_id,
        "created_at": created_at,
    }


class LedgerStore:
    def __init__(
        self, engine: Engine, precision: PrecisionTable, planner: Planner | None = None
    ) -> None:
        if planner is None:
            from ledger.journal import plan_entries  # the real derivation, by default

            planner = plan_entries
        self.engine = engine
        self.precision = precision
        self._planner = planner
        self._reader = read_only(engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing

    def append(
        self,
        records: Sequence[RawRecord],
        *,
        observed_at: datetime,
        rejected: Sequence[Rejected] = (),
        run_id: str | None = None,
    ) -> AppendResult:
        chain.iso_utc(observed_at)  # refuse a naive clock before doing any work
        prepared = [prepare(record) for record in records]
        quarantine = [
            _quarantine_row(
                r.source, r.kind, r.external_id, r.reason, _raw_text(r.raw), run_id, observed_at
            )
            for r in rejected
        ]
        laid = Layout()
        if not prepared and not quarantine:
            return AppendResult((), 0, 0, 0)
        with self.engine.begin() as conn:
            if prepared:
                laid = self._lay_out(conn, prepared, observed_at)
                self._write(conn, laid, prepared)
                quarantine += [
                    _quarantine_row(
                        s.source,
                        s.kind,
                        s.external_id,
                        f"unpostable: {reason}",
                        jsonx.dumps(s.payload),
                        run_id,
                        observed_at,
                    )
                    for s, reason in laid.unpostable
                ]
            if quarantine:
                conn.execute(insert(QUARANTINE), quarantine)
        return AppendResult(
            tuple(laid.snapshots), len(laid.journal), len(quarantine), laid.unchanged
        )

    def _lay_out(self, conn: Connection, prepared: list[Prepared], observed_at: datetime) -> Layout:
        row = conn.execute(select(H.seq, H.hash).where(H.id == 1).with_for_update()).one_or_none()
        if row is None:
            raise LedgerError("ledger_head row is missing: run `tally db upgrade`")
        head = (row.seq, row.hash)
        latest = lookups.latest_versions(conn, list(dict.fromkeys(p.object_key for p in prepared)))
        changed = {
            p.object_key
            for p in prepared
            if p.object_key not in latest or latest[p.object_key].content_hash != p.content_hash
        }
        effective = lookups.effective_entries(conn, sorted(changed))
        skip: frozenset[str] = frozenset()
        while True:  # converges: each pass only grows `skip`, bounded by the planned keys
            laid = layout(
                prepared,
                head=head,
                latest=latest,
                effective=effective,
                observed_at=observed_at,
                precision=self.precision,
                planner=self._planner,
                skip_keys=skip,
            )
            stored = lookups.stored_keys(conn, [entry.key for entry, _ in laid.journal])
            if not stored:
                return laid
            skip |= stored

    def _write(self, conn: Connection, laid: Layout, prepared: list[Prepared]) -> None:
        if not laid.snapshots:
            return
        texts = {(p.object_key, p.content_hash): p.payload_text for p in prepared}
        conn.execute(
            insert(reads.SNAPSHOT_TABLE),
            [
                {
                    "seq": s.seq,
                    "source": s.source,
                    "kind": s.kind,
                    "external_id": s.external_id,
                    "version": s.version,
                    "observed_at": s.observed_at,
                    "payload": texts[((s.source, s.kind, s.external_id), s.content_hash)],
                    "content_hash": s.content_hash,
                    "prev_hash": s.prev_hash,
                    "entry_hash": s.entry_hash,
                }
                for s in laid.snapshots
            ],
        )
        if laid.journal:
            conn.execute(
                insert(reads.JOURNAL_TABLE),
                [
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
                    }
                    for e, kind in laid.journal
                ],
            )
            postings = [
                {
                    "journal_seq": e.seq,
                    "idx": i,
                    "account": p.account,
                    "currency": p.currency,
                    "amount": p.amount,
                }
                for e, _ in laid.journal
                for i, p in enumerate(e.postings)
            ]
            if postings:
                conn.execute(insert(reads.POSTING_TABLE), postings)
        moved = conn.execute(
            update(HEAD)
            .where(H.id == 1, H.seq == laid.base[0])
            .values(seq=laid.head[0], hash=laid.head[1])
        )
        if moved.rowcount != 1:  # only possible if something wrote around the head lock
            raise LedgerError("the chain head moved during the append; nothing was written")

    # --- reading

    def head(self) -> tuple[int, str]:
        with self._reader.connect() as conn:
            row = conn.execute(select(H.seq, H.hash).where(H.id == 1)).one()
        return row.seq, row.hash

    def counts(self) -> dict[str, int]:
        tables = {
            "snapshots": S.seq,
            "journal_entries": J.seq,
            "postings": P.journal_seq,
            "quarantined": QUARANTINE.c.id,
        }
        with self._reader.connect() as conn:
            return {
                name: int(conn.execute(select(func.count(column))).scalar_one())
                for name, column in tables.items()
            }

    def latest(self, source: str, kind: str, external_id: str) -> Snapshot | None:
        return self.latest_many(source, kind, [external_id]).get(external_id)

    def latest_many(
        self, source: str, kind: str, external_ids: Sequence[str]
    ) -> dict[str, Snapshot]:
        found: dict[str, Snapshot] = {}
        with self._reader.connect() as conn:
            for ids in reads.chunks(list(dict.fromkeys(external_ids))):
                stmt = reads.latest_rows(source, kind).where(S.external_id.in_(ids))
                for row in conn.execute(stmt):
                    found[row.external_id] = reads.to_snapshot(row)
        return found

    def iter_latest(self, source: str, kind: str, batch: int = 1000) -> Iterator[Snapshot]:
        """The latest version of every object of ``kind``, in external_id order."""
        last: str | None = None
        while True:
            stmt = reads.latest_rows(source, kind).order_by(S.external_id).limit(batch)
            if last is not None:
                stmt = stmt.where(S.external_id > last)
            with self._reader.connect() as conn:
                rows = conn.execute(stmt).all()
            yield from (reads.to_snapshot(row) for row in rows)
            if len(rows) < batch:
                return
            last = rows[-1].external_id

    def iter_snapshots(
        self,
        since_seq: int = 0,
        *,
        source: str | None = None,
        kind: str | None = None,
        batch: int = 1000,
    ) -> Iterator[Snapshot]:
        stmt = select(*reads.SNAPSHOT_COLUMNS)
        if source is not None:
            stmt = stmt.where(S.source == source)
        if kind is not None:
            stmt = stmt.where(S.kind == kind)
        for row in reads.keyset(self._reader, stmt, S.seq, since_seq, batch):
            yield reads.to_snapshot(row)

    def iter_journal(
        self, since_seq: int = 0, *, until: datetime | None = None, batch: int = 1000
    ) -> Iterator[JournalEntry]:
        """Journal entries in seq order with postings; ``until`` keeps those dated <= it."""
        stmt = select(J)
        if until is not None:
            stmt = stmt.where(J.date <= until)
        rows = reads.keyset(self._reader, stmt, J.seq, since_seq, batch)
        for row, postings in reads.with_postings(self._reader, rows, reads.POSTING_COLUMNS, batch):
            yield reads.to_entry(row, postings)
