"""Batched reads an append makes under the chain-head lock: latest versions, effective
entries and already-stored keys, a few queries per page whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.batch import Latest, ObjectKey
from ledger.model import JournalEntry
from ledger.reads import POSTING_COLUMNS, J, P, S, chunks, one_of, to_entry


def _by_group(objects: Iterable[ObjectKey]) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, kind, external_id in objects:
        groups[(source, kind)].append(external_id)
    return groups


def latest_versions(conn: Connection, objects: Sequence[ObjectKey]) -> dict[ObjectKey, Latest]:
    """The newest stored version of each object (absent: never stored).

    Reads every version of the wanted objects (a handful each) and keeps the newest in Python:
    the query is an index range on external_id, whatever the planner's statistics say.
    """
    found: dict[ObjectKey, Latest] = {}
    for (source, kind), external_ids in _by_group(objects).items():
        for ids in chunks(external_ids):
            stmt = select(S.external_id, S.version, S.content_hash).where(
                one_of(conn, S.external_id, ids), S.source == source, S.kind == kind
            )
            for row in conn.execute(stmt):
                key = (source, kind, row.external_id)
                if key not in found or found[key].version < row.version:
                    found[key] = Latest(row.version, row.content_hash)
    return found


def effective_entries(
    conn: Connection, objects: Sequence[ObjectKey]
) -> Mapping[ObjectKey, JournalEntry | None]:
    """Each object's latest journal entry by seq, or None when that entry is a reversal."""
    newest: dict[str, int] = {}
    found: dict[ObjectKey, JournalEntry | None] = {}
    for (source, kind), external_ids in _by_group(objects).items():
        newest.clear()
        for ids in chunks(external_ids):
            stmt = select(J.external_id, J.seq).where(
                one_of(conn, J.external_id, ids), J.source == source, J.object_kind == kind
            )
            for external_id, seq in conn.execute(stmt):
                newest[external_id] = max(seq, newest.get(external_id, 0))
        for seqs in chunks(sorted(newest.values())):
            rows = conn.execute(select(J).where(one_of(conn, J.seq, seqs))).all()
            postings: dict[int, list[Any]] = defaultdict(list)
            stmt = (
                select(P.journal_seq, *POSTING_COLUMNS)
                .where(one_of(conn, P.journal_seq, seqs))
                .order_by(P.journal_seq, P.idx)
            )
            for posting in conn.execute(stmt):
                postings[posting.journal_seq].append(posting)
            for row in rows:
                entry = to_entry(row, postings[row.seq])
                found[(source, kind, row.external_id)] = None if row.reverses_key else entry
    return found


def stored_keys(conn: Connection, keys: Sequence[str]) -> frozenset[str]:
    stored: set[str] = set()
    for chunk in chunks(list(keys)):
        stored.update(conn.execute(select(J.key).where(one_of(conn, J.key, chunk))).scalars())
    return frozenset(stored)
