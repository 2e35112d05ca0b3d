"""The quarantine (``sync_quarantine``): records an append refused, each kept once, read back in
id order for ``tally quarantine list``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from ledger import chain, jsonx
from ledger.storage import reads
from ledger.storage.tables import QUARANTINE

Q = QUARANTINE.c


def raw_text(raw: Any) -> str:
    """A refused record as text, whatever it arrived as."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    try:
        return jsonx.dumps(raw)
    except (TypeError, ValueError):
        return repr(raw)


def quarantine_fingerprint(
    source: str, kind: str, external_id: str | None, reason: str, raw: str
) -> str:
    """The natural key of a quarantine row: the same bad record is kept once, not per run."""
    return chain.content_hash([source, kind, external_id, reason, raw])


def quarantine_row(
    source: str,
    kind: str,
    external_id: str | None,
    reason: str,
    raw: str,
    run_id: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "fingerprint": quarantine_fingerprint(source, kind, external_id, reason, raw),
        "source": source,
        "kind": kind,
        "external_id": external_id,
        "reason": reason,
        "raw": raw,
        "run_id": run_id,
        "created_at": created_at,
    }


def insert_new(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows not quarantined before; return how many were new."""
    dialect = conn.dialect.name
    wanted = reads.listed(dialect, [row["fingerprint"] for row in rows])
    stmt = select(Q.fingerprint).where(reads.one_of(dialect, Q.fingerprint, "wanted"))
    known = set(conn.execute(stmt, {"wanted": wanted}).scalars())
    fresh = list({r["fingerprint"]: r for r in rows if r["fingerprint"] not in known}.values())
    if fresh:
        # a concurrent quarantine-only append (no head lock) may insert the same row first
        dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
        conn.execute(dialect_insert(QUARANTINE).on_conflict_do_nothing(), fresh)
    return len(fresh)


def iter_quarantined(
    reader: Engine, source: str | None = None, batch: int = 500
) -> Iterator[dict[str, Any]]:
    """Every quarantined row (of ``source``), in id order: keyset pages, constant memory."""
    stmt = select(QUARANTINE)
    if source is not None:
        stmt = stmt.where(Q.source == source)
    last = 0
    while True:
        with reader.connect() as conn:
            page = [
                dict(r)
                for r in conn.execute(
                    stmt.where(Q.id > last).order_by(Q.id).limit(batch)
                ).mappings()
            ]
        yield from page
        if len(page) < batch:
            return
        last = page[-1]["id"]
