"""Batched reads an append makes under the chain-head lock: latest versions, effective
entries and already-stored keys, a few queries per page whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ledger.batch import Latest, ObjectKey
from ledger.model import JournalEntry
from ledger.reads import POSTING_COLUMNS, J, P, S, chunks, to_entry


def _by_group(objects: Iterable[ObjectKey]) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, kind, external_id in objects:
        groups[(source, kind)].append(external_id)
    return groups


def latest_versions(conn: Connection, objects: Sequence[ObjectKey]) -> dict[ObjectKey, Latest]:
    found: dict[ObjectKey, Latest] = {}
    for (source, kind), external_ids in _by_group(objects).items():
        for ids in chunks(external_ids):
            top = (
                select(S.external_id, func.max(S.version).label("version"))
                .where(S.source == source, S.kind == kind, S.external_id.in_(ids))
                .group_by(S.external_id)
                .subquery()
            )
            stmt = select(S.external_id, S.version, S.content_hash).join(
                top,
                (S.source == source)
                & (S.kind == kind)
                & (S.external_id == top.c.external_id)
                & (S.version == top.c.version),
            )
            for row in conn.execute(stmt):
                found[(source, kind, row.external_id)] = Latest(row.version, row.content_hash)
    return found


def effective_entries(
    conn: Connection, objects: Sequence[ObjectKey]
) -> Mapping[ObjectKey, JournalEntry | None]:
    """Each object's latest journal entry by seq, or None when that entry is a reversal."""
    found: dict[ObjectKey, JournalEntry | None] = {}
    for (source, kind), external_ids in _by_group(objects).items():
        for ids in chunks(external_ids):
            top = (
                select(func.max(J.seq).label("seq"))
                .where(J.source == source, J.object_kind == kind, J.external_id.in_(ids))
                .group_by(J.external_id)
                .subquery()
            )
            rows = conn.execute(select(J).join(top, J.seq == top.c.seq)).all()
            if not rows:
                continue
            postings: dict[int, list[Any]] = defaultdict(list)
            stmt = (
                select(P.journal_seq, *POSTING_COLUMNS)
                .where(P.journal_seq.in_([row.seq for row in rows]))
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
        stored.update(conn.execute(select(J.key).where(J.key.in_(chunk))).scalars())
    return frozenset(stored)
