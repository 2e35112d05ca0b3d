"""Reading the ledger back: keyset-paged streams by seq and row-to-value conversions.

Each page is its own short read transaction, so a stream holds no lock and constant memory
however long the ledger; rows are append-only and seqs commit in order, so paging by seq
never skips or repeats a row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, String, any_, bindparam, exists, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine, Row

from ledger import jsonx
from ledger.errors import ChainBroken
from ledger.model import JournalEntry, Posting, Snapshot
from ledger.storage.tables import JOURNAL, POSTING, SNAPSHOT

S, J, P = SNAPSHOT.c, JOURNAL.c, POSTING.c


def one_of(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN (:name)`` with the whole list in ONE bind parameter (bind ``listed(...)``):
    ``= ANY(:array)`` on PostgreSQL, ``IN (SELECT value FROM json_each(:json))`` on SQLite.

    The statement text is the same for any count, so it is compiled and prepared once, and
    it has no per-value parameters to render or to run into SQLite's variable limit.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    values = func.json_each(bindparam(name, type_=String())).table_valued("value")
    return column.in_(select(values.c.value))


def listed(dialect: str, values: Iterable[str | int]) -> Any:
    """The bind value for a ``one_of`` parameter."""
    return list(values) if dialect == "postgresql" else json.dumps(list(values))


def keyset(
    engine: Engine, stmt: Select[Any], seq: Column[int], since: int, batch: int
) -> Iterator[Row[Any]]:
    """Rows of ``stmt`` with ``seq > since`` in seq order, ``batch`` rows per query.

    ``stmt`` must select the ``seq`` column under its own name.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    last = since
    while True:
        with engine.connect() as conn:
            rows = conn.execute(stmt.where(seq > last).order_by(seq).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]._mapping[seq.name]


def with_postings(
    engine: Engine,
    journal_rows: Iterator[Row[Any]],
    posting_columns: Sequence[ColumnElement[Any]],
    batch: int,
) -> Iterator[tuple[Row[Any], list[Row[Any]]]]:
    """Pair each journal row with its postings (in idx order), one postings query per page."""
    page: list[Row[Any]] = []
    for row in journal_rows:
        page.append(row)
        if len(page) == batch:
            yield from _attach(engine, page, posting_columns)
            page = []
    if page:
        yield from _attach(engine, page, posting_columns)


def _attach(
    engine: Engine, page: list[Row[Any]], posting_columns: Sequence[ColumnElement[Any]]
) -> Iterator[tuple[Row[Any], list[Row[Any]]]]:
    first, last = page[0]._mapping["seq"], page[-1]._mapping["seq"]
    stmt = (
        select(P.journal_seq, *posting_columns)
        .where(P.journal_seq >= first, P.journal_seq <= last)
        .order_by(P.journal_seq, P.idx)
    )
    grouped: dict[int, list[Row[Any]]] = defaultdict(list)
    with engine.connect() as conn:
        for posting in conn.execute(stmt):
            grouped[posting.journal_seq].append(posting)
    for row in page:
        yield row, grouped.get(row._mapping["seq"], [])


def to_snapshot(row: Row[Any]) -> Snapshot:
    try:
        payload = jsonx.loads(row.payload)
    except jsonx.InvalidJSON as exc:
        raise ChainBroken(row.seq, f"stored payload is not valid JSON ({exc})") from None
    return Snapshot(
        seq=row.seq,
        source=row.source,
        kind=row.kind,
        external_id=row.external_id,
        version=row.version,
        observed_at=row.observed_at,
        content_hash=row.content_hash,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
        payload=payload,
    )


def to_entry(row: Row[Any], postings: Sequence[Row[Any]]) -> JournalEntry:
    """A stored entry; ``extra["object_kind"]`` carries the kind of object it belongs to."""
    return JournalEntry(
        key=row.key,
        date=row.date,
        description=row.description,
        source=row.source,
        external_id=row.external_id,
        snapshot_seq=row.snapshot_seq,
        postings=tuple(
            Posting(p.account, p.currency, p.amount, p.value, p.value_currency) for p in postings
        ),
        reverses_key=row.reverses_key,
        seq=row.seq,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
        extra={"object_kind": row.object_kind},
        recorded_at=row.recorded_at,
        meta=jsonx.loads(row.meta) if row.meta else {},
    )


SNAPSHOT_COLUMNS = (
    S.seq,
    S.source,
    S.kind,
    S.external_id,
    S.version,
    S.observed_at,
    S.payload,
    S.content_hash,
    S.prev_hash,
    S.entry_hash,
)
POSTING_COLUMNS = (P.idx, P.account, P.currency, P.amount, P.value, P.value_currency)


def latest_rows(source: str, kind: str) -> Select[Any]:
    """Snapshot rows that have no later version: the latest of each object."""
    newer = SNAPSHOT.alias("newer")
    return select(*SNAPSHOT_COLUMNS).where(
        S.source == source,
        S.kind == kind,
        ~exists().where(
            newer.c.source == S.source,
            newer.c.kind == S.kind,
            newer.c.external_id == S.external_id,
            newer.c.version > S.version,
        ),
    )


def recorded_time() -> ColumnElement[Any]:
    """When tally recorded a journal row: ``recorded_at``, or (rows older than migration 0007)
    the observed time of its snapshot, appended in the same transaction."""
    observed = select(S.observed_at).where(S.seq == J.snapshot_seq).scalar_subquery()
    return func.coalesce(J.recorded_at, observed)


def stored_later(kind: str) -> ColumnElement[bool]:
    """An object of ``kind`` with the outer snapshot row's source and external id was stored
    after that row (an index lookup on the object's versions)."""
    later = SNAPSHOT.alias("later")
    return exists().where(
        later.c.external_id == S.external_id,
        later.c.source == S.source,
        later.c.kind == kind,
        later.c.seq > S.seq,
    )
