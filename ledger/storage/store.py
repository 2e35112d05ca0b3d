"""The append-only ledger store: one transaction per append, one global hash chain.

There is no update or delete API. ``append`` hashes payloads before taking the chain-head lock
(PostgreSQL ``SELECT … FOR UPDATE``, SQLite ``BEGIN IMMEDIATE``); on PostgreSQL it also lays the
rows out before the lock from what it reads then (a draft, ``ledger.storage.planning``). Under
the lock it uses the draft if nothing it read has changed (re-linked after the head if another
writer appended other objects), else reads what it must (latest versions, effective entries,
known keys) in a few batched queries and lays the rows out with ``ledger.storage.batch.layout``;
then it writes them in bulk (``ledger.storage.bulk``: COPY on PostgreSQL, executemany
elsewhere). Unique constraints refuse a duplicate version or key even if the lock were
bypassed; any failure rolls everything back. Refused records go to the quarantine
(``ledger.storage.quarantine``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, select, update
from sqlalchemy.engine import Connection, Engine

from ledger import chain, jsonx
from ledger.errors import LedgerError
from ledger.journal.periods import (
    LEDGER_SOURCE,
    PERIOD_CLOSE,
    PeriodClose,
    check_close,
    close_payload,
    read_close,
)
from ledger.journal.postings import DeriverTable
from ledger.journal.valuation import NO_PRICE
from ledger.model import JournalEntry, RawRecord, Rejected, Snapshot
from ledger.money import exact_arithmetic
from ledger.precision import PrecisionTable
from ledger.storage import lookups, reads
from ledger.storage.batch import Layout, ObjectKey, Planner, Prepared, prepare
from ledger.storage.bulk import insert_rows
from ledger.storage.engine import read_only
from ledger.storage.planning import Draft, plan, read_inputs, redeem
from ledger.storage.quarantine import insert_new, iter_quarantined, quarantine_row, raw_text
from ledger.storage.reads import J, P, S
from ledger.storage.tables import HEAD, JOURNAL, POSTING, QUARANTINE, SNAPSHOT

H = HEAD.c
READ_HEAD = select(H.seq, H.hash).where(H.id == 1)
LOCK_HEAD = READ_HEAD.with_for_update()
MOVE_HEAD = (
    update(HEAD)
    .where(H.id == 1, H.seq == bindparam("old_seq"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)

__all__ = ["AppendResult", "LedgerStore", "Planner"]


@dataclass(frozen=True)
class AppendResult:
    """What one append wrote. ``quarantined`` counts new quarantine rows: rejected records not
    quarantined before, plus any new snapshot the planner could not post (the snapshot is
    kept, its journal left for a person); ``unchanged`` counts records equal to their
    object's latest version."""

    new_snapshots: tuple[Snapshot, ...]
    journal_entries: int
    quarantined: int
    unchanged: int
    overtaken: tuple[ObjectKey, ...] = ()  # not stored: read before a newer version landed


class LedgerStore:
    """The ledger on one engine; appends never update or delete a ledger row. ``planner``
    derives journal entries from a new snapshot: by default the journal with ``derivers``, the
    gateways' (source, kind) → deriver table (none: fine for reading; every new snapshot's
    journal is then unpostable and quarantined)."""

    def __init__(
        self,
        engine: Engine,
        precision: PrecisionTable,
        planner: Planner | None = None,
        *,
        derivers: DeriverTable | None = None,
        draft_before_lock: bool | None = None,
    ) -> None:
        if planner is None:
            from ledger.journal.derive import journal_planner  # the real derivation, by default

            planner = journal_planner(derivers or {})
        elif derivers is not None:
            raise ValueError("pass a planner or derivers, not both")
        self.engine = engine
        self.precision = precision
        self._planner = planner
        self._reader = read_only(engine)
        # PostgreSQL: writers in several processes lay out side by side and hold the head lock
        # only to check, re-link and write (ledger.storage.planning). SQLite: one file lock and,
        # embedded, one interpreter; a draft would move no work off the critical path.
        if draft_before_lock is None:
            draft_before_lock = engine.dialect.name != "sqlite"
        self.draft_before_lock = draft_before_lock

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
        read_since: datetime | None = None,
        refetchable: Collection[str] = (),
    ) -> AppendResult:
        """Append ``records`` (new versions only) and quarantine ``rejected``, in one transaction.

        With ``read_since`` (when the request that read ``records`` was sent): a record of a
        ``refetchable`` kind whose object gained a different version after that moment is not
        stored, since the read may predate that version (a page fetched before a change, landing
        after a callback's fresh fetch, would store the old state as a new version); its key is
        returned in ``overtaken``, for the caller to read that object again on its own."""
        chain.iso_utc(observed_at)  # refuse a naive clock before doing any work
        observed_at = observed_at.astimezone(UTC)
        prepared = [prepare(record) for record in records]
        quarantine = [
            quarantine_row(
                r.source, r.kind, r.external_id, r.reason, raw_text(r.raw), run_id, observed_at
            )
            for r in rejected
        ]
        laid = Layout()
        if not prepared and not quarantine:
            return AppendResult((), 0, 0, 0)
        draft = None
        if prepared and self.draft_before_lock:
            draft = self._draft(prepared, observed_at, read_since, refetchable)
        with self.engine.begin() as conn:
            if prepared:
                laid = self._lay_out(conn, prepared, observed_at, read_since, refetchable, draft)
                self._write(conn, laid)
                quarantine += [
                    quarantine_row(
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
            quarantined = insert_new(conn, quarantine) if quarantine else 0
        return AppendResult(
            tuple(laid.snapshots),
            len(laid.journal),
            quarantined,
            laid.unchanged,
            tuple(laid.overtaken),
        )

    def _lay_out(
        self,
        conn: Connection,
        prepared: list[Prepared],
        observed_at: datetime,
        read_since: datetime | None = None,
        refetchable: Collection[str] = (),
        draft: Draft | None = None,
    ) -> Layout:
        head = _chain_head(conn, LOCK_HEAD)
        if draft is not None and head == draft.head:
            return draft.laid  # nothing was written since the draft read the head: it is current
        inputs = read_inputs(conn, prepared, read_since, refetchable)
        if draft is not None:
            redeemed = redeem(conn, draft, head, inputs)
            if redeemed is not None:
                return redeemed
        return plan(conn, inputs, head, observed_at, self.precision, self._planner)[0]

    def _draft(
        self,
        prepared: list[Prepared],
        observed_at: datetime,
        read_since: datetime | None,
        refetchable: Collection[str],
    ) -> Draft:
        """The append laid out from a read-only view, before taking the head lock."""
        with self._reader.connect() as conn:
            # Read first: a head still unchanged under the lock vouches for every later read.
            head = _chain_head(conn, READ_HEAD)
            inputs = read_inputs(conn, prepared, read_since, refetchable)
            laid, asked = plan(conn, inputs, head, observed_at, self.precision, self._planner)
        return Draft(head, inputs, laid, asked)

    def _write(self, conn: Connection, laid: Layout) -> None:
        if not laid.snapshots:
            return
        insert_rows(conn, SNAPSHOT, laid.snapshot_rows())
        insert_rows(conn, JOURNAL, laid.journal_rows())
        insert_rows(conn, POSTING, laid.posting_rows())
        moved = conn.execute(
            MOVE_HEAD, {"old_seq": laid.base[0], "new_seq": laid.head[0], "new_hash": laid.head[1]}
        )
        if moved.rowcount != 1:  # only possible if something wrote around the head lock
            raise LedgerError("the chain head moved during the append; nothing was written")

    def close_period(self, through: date, *, now: datetime, note: str = "") -> PeriodClose:
        """Close the books through ``through``: a ``period-close`` record in the chain that seals
        the head at this moment. Raises ``CloseRefused`` for a close twice, backwards or into
        the future (``through`` must be before ``now``'s UTC day)."""
        chain.iso_utc(now)
        now = now.astimezone(UTC)
        with self.engine.begin() as conn:
            head = _chain_head(conn, LOCK_HEAD)
            closed = lookups.closed_through(conn)
            check_close(through, [] if closed is None else [closed], now.date())
            payload = close_payload(through, now, head, note)
            record = RawRecord(LEDGER_SOURCE, PERIOD_CLOSE, through.isoformat(), payload)
            laid = self._lay_out(conn, [prepare(record)], now)
            self._write(conn, laid)
        return read_close(laid.snapshots[0])

    # --- reading

    def periods(self) -> list[PeriodClose]:
        """Every period close, oldest first."""
        return [read_close(s) for s in self.iter_snapshots(source=LEDGER_SOURCE, kind=PERIOD_CLOSE)]

    def head(self) -> tuple[int, str]:
        with self._reader.connect() as conn:
            row = conn.execute(READ_HEAD).one()
        return row.seq, row.hash

    def entry(self, key: str) -> JournalEntry | None:
        """The journal entry with this key, with its postings; None when there is none."""
        with self._reader.connect() as conn:
            row = conn.execute(select(JOURNAL).where(J.key == key)).one_or_none()
            if row is None:
                return None
            stmt: Select[Any] = (
                select(*reads.POSTING_COLUMNS).where(P.journal_seq == row.seq).order_by(P.idx)
            )
            postings = conn.execute(stmt).all()
        return reads.to_entry(row, postings)

    def account_balance(self, account: str, currency: str) -> Decimal:
        """The exact balance of one account in one commodity (summed here, never in SQL:
        SQLite would sum money as floats)."""
        with self._reader.connect() as conn:
            amounts = conn.execute(
                select(P.amount).where(P.account == account, P.currency == currency)
            ).scalars()
            with exact_arithmetic():
                return sum(amounts, Decimal(0))

    def unpriced_count(self) -> int:
        """How many entries in force carry no fiat value (``iter_unpriced``)."""
        with self._reader.connect() as conn:
            return int(conn.execute(select(func.count(J.seq)).where(_unpriced())).scalar_one())

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
        with self._reader.connect() as conn:
            dialect = conn.dialect.name
            wanted = reads.one_of(dialect, S.external_id, "ids")
            stmt = reads.latest_rows(source, kind).where(wanted)
            rows = conn.execute(stmt, {"ids": reads.listed(dialect, external_ids)})
            return {row.external_id: reads.to_snapshot(row) for row in rows}

    def versions_many(
        self, source: str, kind: str, external_ids: Sequence[str]
    ) -> dict[str, list[Snapshot]]:
        """Every stored version of each object, oldest first (one query)."""
        found: dict[str, list[Snapshot]] = {}
        if not external_ids:
            return found
        with self._reader.connect() as conn:
            dialect = conn.dialect.name
            stmt: Select[Any] = (
                select(*reads.SNAPSHOT_COLUMNS)
                .where(
                    S.source == source, S.kind == kind, reads.one_of(dialect, S.external_id, "ids")
                )
                .order_by(S.external_id, S.version)
            )
            for row in conn.execute(stmt, {"ids": reads.listed(dialect, external_ids)}):
                found.setdefault(row.external_id, []).append(reads.to_snapshot(row))
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

    def iter_latest_since(
        self,
        source: str,
        kind: str,
        since_seq: int = 0,
        *,
        containing: str | None = None,
        without_later: str | None = None,
        batch: int = 1000,
    ) -> Iterator[Snapshot]:
        """The latest version of each object of ``kind`` stored after ``since_seq``, in seq order.

        ``containing`` keeps payloads whose stored text contains it (a cheap pre-filter: the
        caller still reads the parsed payload). ``without_later`` leaves out objects for which
        an object of that kind with the same external id was stored after this version.
        """
        stmt = reads.latest_rows(source, kind)
        if containing is not None:
            stmt = stmt.where(S.payload.contains(containing, autoescape=True))
        if without_later is not None:
            stmt = stmt.where(~reads.stored_later(without_later))
        for row in reads.keyset(self._reader, stmt, S.seq, since_seq, batch):
            yield reads.to_snapshot(row)

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
        self,
        since_seq: int = 0,
        *,
        until: datetime | None = None,
        recorded_by: datetime | None = None,
        batch: int = 1000,
    ) -> Iterator[JournalEntry]:
        """Journal entries in seq order with postings; ``until`` keeps those dated <= it,
        ``recorded_by`` those tally had recorded by then (what the ledger said at that time)."""
        recorded = reads.recorded_time()
        stmt = select(
            *(c for c in JOURNAL.c if c is not J.recorded_at), recorded.label("recorded_at")
        )
        if until is not None:
            stmt = stmt.where(J.date <= until)
        if recorded_by is not None:
            stmt = stmt.where(recorded <= recorded_by)
        rows = reads.keyset(self._reader, stmt, J.seq, since_seq, batch)
        for row, postings in reads.with_postings(self._reader, rows, reads.POSTING_COLUMNS, batch):
            yield reads.to_entry(row, postings)

    def iter_unpriced(self, batch: int = 1000) -> Iterator[JournalEntry]:
        """Entries in force flagged ``no-price`` (the gateway quoted no fiat value): not
        reversals, and not reversed since."""
        rows = reads.keyset(self._reader, select(JOURNAL).where(_unpriced()), J.seq, 0, batch)
        for row, postings in reads.with_postings(self._reader, rows, reads.POSTING_COLUMNS, batch):
            yield reads.to_entry(row, postings)

    def iter_quarantined(
        self, source: str | None = None, batch: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Every quarantined record (of ``source``) as its row, oldest first."""
        return iter_quarantined(self._reader, source, batch)


def _unpriced() -> Any:
    """Entries flagged ``no-price`` that are in force: not reversals, not reversed since."""
    reversal = JOURNAL.alias("reversal")
    return and_(
        J.meta.contains(f'"{NO_PRICE}"', autoescape=True),
        J.reverses_key.is_(None),
        ~exists().where(reversal.c.reverses_key == J.key),
    )


def _chain_head(conn: Connection, statement: Select[Any]) -> tuple[int, str]:
    """(seq, hash) of the chain head, read (``READ_HEAD``) or locked (``LOCK_HEAD``)."""
    row = conn.execute(statement).one_or_none()
    if row is None:
        raise LedgerError("ledger_head row is missing: run `tally db upgrade`")
    return row.seq, row.hash
