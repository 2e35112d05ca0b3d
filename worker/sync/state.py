"""Sync run state: cursors (high-water marks, last full scan) and per-run progress counters.

Ordinary mutable tables (``sync_cursor``, ``sync_run*``), apart from the immutable ledger.
Every write is idempotent, so a message processed twice leaves the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ledger.storage.run_tables import SyncRun, SyncRunFeed, SyncRunItem
from ledger.storage.tables import SyncCursor

RUN: Table = SyncRun.__table__  # type: ignore[attr-defined]
FEED: Table = SyncRunFeed.__table__  # type: ignore[attr-defined]
ITEM: Table = SyncRunItem.__table__  # type: ignore[attr-defined]
CURSOR: Table = SyncCursor.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    source: str
    mode: str
    pages: int
    new_snapshots: int
    journal_entries: int
    rejected: int
    error: str | None
    finished: bool


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return conn.execute(stmt).rowcount or 0


class RunState:
    """Reads and writes the sync bookkeeping tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- runs

    def start_run(self, run_id: str, source: str, mode: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            _insert_ignore(
                conn, RUN, {"run_id": run_id, "source": source, "mode": mode, "started_at": now}
            )

    def plan_feed(self, run_id: str, feed: str, pages_expected: int) -> None:
        with self._engine.begin() as conn:
            _insert_ignore(
                conn, FEED, {"run_id": run_id, "feed": feed, "pages_expected": pages_expected}
            )

    def set_expected(self, run_id: str, feed: str, pages_expected: int) -> None:
        """Fix the plan of a walk whose length is known only at its end (incremental scans)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(FEED)
                .where(FEED.c.run_id == run_id, FEED.c.feed == feed)
                .values(pages_expected=pages_expected)
            )

    def extend_feed(self, run_id: str, feed: str, max_page: int) -> range:
        """Grow the plan to ``max_page``; only the caller winning the update gets the new pages."""
        with self._engine.begin() as conn:
            current = conn.execute(
                select(FEED.c.pages_expected).where(FEED.c.run_id == run_id, FEED.c.feed == feed)
            ).scalar_one_or_none()
            if current is None or max_page <= current:
                return range(0)
            won = conn.execute(
                update(FEED)
                .where(
                    FEED.c.run_id == run_id, FEED.c.feed == feed, FEED.c.pages_expected == current
                )
                .values(pages_expected=max_page)
            ).rowcount
        return range(current + 1, max_page + 1) if won else range(0)

    def record_item(
        self,
        run_id: str,
        item: str,
        *,
        pages: int,
        new_snapshots: int,
        journal_entries: int,
        rejected: int,
        now: datetime | None = None,
    ) -> None:
        values = {
            "run_id": run_id,
            "item": item,
            "pages": pages,
            "new_snapshots": new_snapshots,
            "journal_entries": journal_entries,
            "rejected": rejected,
            "done_at": now or datetime.now().astimezone(),
        }
        with self._engine.begin() as conn:
            _insert_ignore(conn, ITEM, values)

    def note_newest(self, run_id: str, feed: str, newest: datetime | None) -> None:
        if newest is None:
            return
        with self._engine.begin() as conn:
            conn.execute(
                update(FEED)
                .where(FEED.c.run_id == run_id, FEED.c.feed == feed)
                .where((FEED.c.newest_seen.is_(None)) | (FEED.c.newest_seen < newest))
                .values(newest_seen=newest)
            )

    def record_error(self, run_id: str, message: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(RUN).where(RUN.c.run_id == run_id).values(error=message[:2000]))

    def feed_progress(self, run_id: str) -> dict[str, tuple[int, int]]:
        """feed → (pages done, pages expected)."""
        with self._engine.connect() as conn:
            plans = conn.execute(
                select(FEED.c.feed, FEED.c.pages_expected).where(FEED.c.run_id == run_id)
            ).all()
            result = {}
            for feed, expected in plans:
                done = conn.execute(
                    select(func.count())
                    .select_from(ITEM)
                    .where(ITEM.c.run_id == run_id, ITEM.c.item.like(f"{feed}#%"))
                ).scalar_one()
                result[feed] = (int(done), int(expected))
        return result

    def finish_feed_if_complete(self, run_id: str, source: str, feed: str, now: datetime) -> bool:
        """Close the feed once every planned page is done; advance the cursor exactly once."""
        done, expected = self.feed_progress(run_id).get(feed, (0, -1))
        if done < expected:
            return False
        with self._engine.begin() as conn:
            won = conn.execute(
                update(FEED)
                .where(FEED.c.run_id == run_id, FEED.c.feed == feed, FEED.c.finished_at.is_(None))
                .values(finished_at=now)
            ).rowcount
            if not won:
                return False
            newest, mode = conn.execute(
                select(FEED.c.newest_seen, RUN.c.mode)
                .join(RUN, RUN.c.run_id == FEED.c.run_id)
                .where(FEED.c.run_id == run_id, FEED.c.feed == feed)
            ).one()
            self._advance_cursor(conn, source, feed, newest, now, full=(mode == "full"))
        return True

    def finish_run(self, run_id: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(RUN)
                .where(RUN.c.run_id == run_id, RUN.c.finished_at.is_(None))
                .values(finished_at=now)
            )

    def summary(self, run_id: str) -> RunSummary | None:
        with self._engine.connect() as conn:
            run = conn.execute(select(RUN).where(RUN.c.run_id == run_id)).mappings().one_or_none()
            if run is None:
                return None
            totals = conn.execute(
                select(
                    func.coalesce(func.sum(ITEM.c.pages), 0),
                    func.coalesce(func.sum(ITEM.c.new_snapshots), 0),
                    func.coalesce(func.sum(ITEM.c.journal_entries), 0),
                    func.coalesce(func.sum(ITEM.c.rejected), 0),
                ).where(ITEM.c.run_id == run_id)
            ).one()
        return RunSummary(
            run_id,
            run["source"],
            run["mode"],
            *(int(t) for t in totals),
            error=run["error"],
            finished=run["finished_at"] is not None,
        )

    # --- cursors

    def high_water(self, source: str, feed: str) -> datetime | None:
        with self._engine.connect() as conn:
            return conn.execute(
                select(CURSOR.c.high_water).where(CURSOR.c.source == source, CURSOR.c.feed == feed)
            ).scalar_one_or_none()

    def cursors(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(CURSOR).order_by(CURSOR.c.source, CURSOR.c.feed)
                ).mappings()
            ]

    def mark_source(self, source: str, now: datetime, error: str | None) -> None:
        """Record a source's last success (error None) or its latest error, for meta-alerts."""
        with self._engine.begin() as conn:
            _insert_ignore(conn, CURSOR, {"source": source, "feed": "_source", "updated_at": now})
            values: dict[str, Any] = {"updated_at": now, "last_error": error}
            if error is None:
                values["last_success_at"] = now
            conn.execute(
                update(CURSOR)
                .where(CURSOR.c.source == source, CURSOR.c.feed == "_source")
                .values(**values)
            )

    def _advance_cursor(
        self,
        conn: Connection,
        source: str,
        feed: str,
        newest: datetime | None,
        now: datetime,
        *,
        full: bool,
    ) -> None:
        _insert_ignore(conn, CURSOR, {"source": source, "feed": feed, "updated_at": now})
        values: dict[str, Any] = {"updated_at": now, "last_success_at": now, "last_error": None}
        if full:
            values["last_full_scan_at"] = now
        conn.execute(
            update(CURSOR).where(CURSOR.c.source == source, CURSOR.c.feed == feed).values(**values)
        )
        if newest is not None:
            conn.execute(
                update(CURSOR)
                .where(CURSOR.c.source == source, CURSOR.c.feed == feed)
                .where((CURSOR.c.high_water.is_(None)) | (CURSOR.c.high_water < newest))
                .values(high_water=newest)
            )
