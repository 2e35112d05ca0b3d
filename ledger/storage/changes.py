"""Which records would make a new version, read before an append (no lock, no write).

A sync asks this of a page before appending it, to decide which follow-ups (refund-infos) to
fetch and append in the page's own transaction. The answer is a forecast: the append under the
head lock decides, and the caller compares the two (another writer may land in between).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from ledger import chain
from ledger.model import RawRecord
from ledger.storage.engine import read_only
from ledger.storage.lookups import latest_versions


def new_versions(engine: Engine, records: Sequence[RawRecord]) -> set[tuple[str, str]]:
    """(kind, external_id) of each record whose content differs from its object's latest stored
    version, or whose object has none: what an append of ``records`` now would store. One
    batched query per (source, kind), as the append's own lookup."""
    if not records:
        return set()
    keys = list(dict.fromkeys((r.source, r.kind, r.external_id) for r in records))
    with read_only(engine).connect() as conn:
        latest = latest_versions(conn, keys)
    new: set[tuple[str, str]] = set()
    for record in records:
        stored = latest.get((record.source, record.kind, record.external_id))
        if stored is None or stored.content_hash != chain.content_hash(record.payload):
            new.add((record.kind, record.external_id))
    return new
