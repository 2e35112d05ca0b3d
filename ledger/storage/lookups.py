"""Batched reads an append makes under the chain-head lock: latest versions, effective
entries and already-stored keys, a few queries per page whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.engine import Connection

from ledger.journal.periods import LEDGER_SOURCE, PERIOD_CLOSE
from ledger.model import JournalEntry, Snapshot
from ledger.storage.batch import Latest, ObjectKey
from ledger.storage.reads import (
    POSTING_COLUMNS,
    SNAPSHOT_COLUMNS,
    J,
    P,
    S,
    listed,
    one_of,
    to_entry,
    to_snapshot,
)
from ledger.storage.tables import JOURNAL


def _by_group(objects: Iterable[ObjectKey]) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, kind, external_id in objects:
        groups[(source, kind)].append(external_id)
    return groups


@lru_cache(maxsize=4)
def _statements(dialect: str) -> dict[str, Select[Any]]:
    """Built once per dialect: these run on every append, under the head lock."""
    source, kind = bindparam("source", type_=String()), bindparam("kind", type_=String())
    return {
        "latest": select(S.external_id, S.version, S.content_hash, S.observed_at).where(
            one_of(dialect, S.external_id, "ids"), S.source == source, S.kind == kind
        ),
        "entry_seqs": select(J.external_id, J.seq).where(
            one_of(dialect, J.external_id, "ids"), J.source == source, J.object_kind == kind
        ),
        "entries": select(JOURNAL).where(one_of(dialect, J.seq, "seqs")),
        "postings": select(P.journal_seq, *POSTING_COLUMNS)
        .where(one_of(dialect, P.journal_seq, "seqs"))
        .order_by(P.journal_seq, P.idx),
        "keys": select(J.key).where(one_of(dialect, J.key, "keys")),
        "versions": select(*SNAPSHOT_COLUMNS)
        .where(S.external_id == bindparam("id"), S.source == source, S.kind == kind)
        .order_by(S.version),
        "closed": select(func.max(S.external_id)).where(
            S.source == LEDGER_SOURCE, S.kind == PERIOD_CLOSE
        ),
    }


def latest_versions(conn: Connection, objects: Sequence[ObjectKey]) -> dict[ObjectKey, Latest]:
    """The newest stored version of each object (absent: never stored).

    Reads every version of the wanted objects (a handful each) and keeps the newest in Python:
    the query is an index range on external_id, whatever the planner's statistics say.
    """
    dialect = conn.dialect.name
    found: dict[ObjectKey, Latest] = {}
    for (source, kind), ids in _by_group(objects).items():
        params = {"ids": listed(dialect, ids), "source": source, "kind": kind}
        for row in conn.execute(_statements(dialect)["latest"], params):
            key = (source, kind, row.external_id)
            if key not in found or found[key].version < row.version:
                found[key] = Latest(row.version, row.content_hash, row.observed_at)
    return found


def effective_entries(
    conn: Connection, objects: Sequence[ObjectKey]
) -> Mapping[ObjectKey, JournalEntry | None]:
    """Each object's latest journal entry by seq, or None when that entry is a reversal."""
    dialect = conn.dialect.name
    statements = _statements(dialect)
    found: dict[ObjectKey, JournalEntry | None] = {}
    for (source, kind), ids in _by_group(objects).items():
        params = {"ids": listed(dialect, ids), "source": source, "kind": kind}
        newest: dict[str, int] = {}
        for external_id, seq in conn.execute(statements["entry_seqs"], params):
            newest[external_id] = max(seq, newest.get(external_id, 0))
        if not newest:
            continue
        seqs = {"seqs": listed(dialect, sorted(newest.values()))}
        postings: dict[int, list[Any]] = defaultdict(list)
        for posting in conn.execute(statements["postings"], seqs):
            postings[posting.journal_seq].append(posting)
        for row in conn.execute(statements["entries"], seqs):
            entry = to_entry(row, postings[row.seq])
            found[(source, kind, row.external_id)] = None if row.reverses_key else entry
    return found


def stored_keys(conn: Connection, keys: Sequence[str]) -> frozenset[str]:
    if not keys:
        return frozenset()
    dialect = conn.dialect.name
    params = {"keys": listed(dialect, keys)}
    return frozenset(conn.execute(_statements(dialect)["keys"], params).scalars())


def versions(conn: Connection, key: ObjectKey) -> list[Snapshot]:
    """Every stored version of one object, oldest first (an index range on external_id)."""
    source, kind, external_id = key
    params = {"id": external_id, "source": source, "kind": kind}
    return [
        to_snapshot(row) for row in conn.execute(_statements(conn.dialect.name)["versions"], params)
    ]


def closed_through(conn: Connection) -> date | None:
    """The last day of the latest closed period, or None when no period was ever closed.

    Close ids are ISO dates, so the greatest id is the latest close (closes only move forward).
    """
    latest = conn.execute(_statements(conn.dialect.name)["closed"]).scalar_one_or_none()
    return None if latest is None else date.fromisoformat(latest)
