"""Sync run state: cursors (high-water marks, last full scan) and per-run progress counters.

The one module that reads and writes ``sync_run``, ``sync_run_feed``, ``sync_run_item`` and
``sync_cursor`` (ordinary mutable tables, apart from the immutable ledger): status, readiness
and the meta-alerts read them through ``RunState`` too. Every write is idempotent, so a message
processed twice leaves the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ledger.storage.engine import read_only
from ledger.storage.sync_tables import SYNC_CURSOR, SYNC_RUN, SYNC_RUN_FEED, SYNC_RUN_ITEM
from ledger.storage.types import UTCDateTime

RUN, FEED, ITEM, CURSOR = SYNC_RUN.c, SYNC_RUN_FEED.c, SYNC_RUN_ITEM.c, SYNC_CURSOR.c
SOURCE_FEED = "_source"  # the cursor row of a source itself: its last call and latest error


@dataclass(frozen=True)
class RunSummary:
    """One run so far: what its items appended, and how far its feed plan is done."""

    run_id: str
    source: str
    mode: str
    started_at: datetime
    pages: int
    new_snapshots: int
    journal_entries: int
    rejected: int
    error: str | None
    closed: bool  # its last feed finished (``finish_run_if_complete``) or ``finish_run`` was called
    pages_expected: int
    feeds_planned: int
    feeds_finished: int
    interrupted: bool  # recovery found nothing working on it and did not resume it
    last_progress: datetime  # its latest item done, else its start

    @property
    def finished(self) -> bool:
        """Closed, or every planned feed finished (a run closed by ``finish_run`` may not be)."""
        return self.closed or 0 < self.feeds_planned == self.feeds_finished


@dataclass(frozen=True)
class Cursor:
    """Where one feed of one source stands (feed ``SOURCE_FEED``: the source itself)."""

    source: str
    feed: str
    high_water: datetime | None  # creation time of the newest object seen
    last_full_scan_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return conn.execute(stmt).rowcount or 0


def _per_run(table: Table, value: Any) -> Any:
    """``value`` aggregated over the rows of ``table`` that belong to the run selected around it."""
    return select(value).where(table.c.run_id == RUN.run_id).scalar_subquery()


# One row per run: its columns, what its items appended, and its feed plan (correlated
# subqueries on each table's (run_id, ...) primary key, so a few index lookups per run).
SUMMARY = select(
    RUN.run_id,
    RUN.source,
    RUN.mode,
    RUN.started_at,
    *(
        _per_run(SYNC_RUN_ITEM, func.coalesce(func.sum(column), 0)).label(column.name)
        for column in (ITEM.pages, ITEM.new_snapshots, ITEM.journal_entries, ITEM.rejected)
    ),
    RUN.error,
    RUN.finished_at.is_not(None).label("closed"),
    _per_run(SYNC_RUN_FEED, func.coalesce(func.sum(FEED.pages_expected), 0)).label(
        "pages_expected"
    ),
    _per_run(SYNC_RUN_FEED, func.count()).label("feeds_planned"),
    _per_run(SYNC_RUN_FEED, func.count(FEED.finished_at)).label("feeds_finished"),
    RUN.interrupted_at.is_not(None).label("interrupted"),
    func.coalesce(
        _per_run(SYNC_RUN_ITEM, func.max(ITEM.done_at)), RUN.started_at, type_=UTCDateTime
    ).label("last_progress"),
)


class RunState:
    """Reads and writes the sync bookkeeping tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = read_only(engine)

    # --- runs

    def start_run(self, run_id: str, source: str, mode: str, now: datetime) -> None:
        row = {"run_id": run_id, "source": source, "mode": mode, "started_at": now}
        with self._engine.begin() as conn:
            _insert_ignore(conn, SYNC_RUN, row)

    def plan_feed(self, run_id: str, feed: str, pages_expected: int) -> None:
        row = {"run_id": run_id, "feed": feed, "pages_expected": pages_expected}
        with self._engine.begin() as conn:
            _insert_ignore(conn, SYNC_RUN_FEED, row)

    def set_expected(self, run_id: str, feed: str, pages_expected: int) -> None:
        """Fix the plan of a walk whose length is known only at its end (incremental scans)."""
        with self._engine.begin() as conn:
            conn.execute(_feed(run_id, feed).values(pages_expected=pages_expected))

    def extend_feed(self, run_id: str, feed: str, max_page: int) -> range:
        """Grow the plan to ``max_page``; only the caller winning the update gets the new pages."""
        with self._engine.begin() as conn:
            current = conn.execute(
                select(FEED.pages_expected).where(FEED.run_id == run_id, FEED.feed == feed)
            ).scalar_one_or_none()
            if current is None or max_page <= current:
                return range(0)
            won = conn.execute(
                _feed(run_id, feed)
                .where(FEED.pages_expected == current)
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
            _insert_ignore(conn, SYNC_RUN_ITEM, values)

    def record_page(
        self,
        run_id: str,
        feed: str,
        number: int,
        *,
        new_snapshots: int,
        journal_entries: int,
        rejected: int,
        newest: datetime | None,
        follow_ups: Sequence[str] = (),
        now: datetime | None = None,
    ) -> None:
        """Note page ``number`` of ``feed`` done, with what it appended, the follow-ups it
        appended with it (items of their own, counted on the page's) and its newest creation
        time (once the feed is planned), all in one transaction."""
        done_at = now or datetime.now().astimezone()
        page = {"pages": 1, "new_snapshots": new_snapshots, "journal_entries": journal_entries}
        zero = {"pages": 0, "new_snapshots": 0, "journal_entries": 0, "rejected": 0}
        rows = [{"run_id": run_id, "item": f"{feed}#{number}", **page, "rejected": rejected}]
        rows += [{"run_id": run_id, "item": item, **zero} for item in follow_ups]
        with self._engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(SYNC_RUN_ITEM).on_conflict_do_nothing()
            conn.execute(insert, [{**row, "done_at": done_at} for row in rows])
            if newest is not None:
                conn.execute(_newest(run_id, feed, newest))

    def note_newest(self, run_id: str, feed: str, newest: datetime | None) -> None:
        if newest is None:
            return
        with self._engine.begin() as conn:
            conn.execute(_newest(run_id, feed, newest))

    def record_error(self, run_id: str, message: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(SYNC_RUN).where(RUN.run_id == run_id).values(error=message[:2000]))

    def feed_progress(self, run_id: str) -> dict[str, tuple[int, int]]:
        """feed → (pages done, pages expected)."""
        with self._reader.connect() as conn:
            plans = conn.execute(
                select(FEED.feed, FEED.pages_expected).where(FEED.run_id == run_id)
            ).all()
            result = {}
            for feed, expected in plans:
                done = conn.execute(
                    select(func.count()).where(ITEM.run_id == run_id, ITEM.item.like(f"{feed}#%"))
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
                _feed(run_id, feed).where(FEED.finished_at.is_(None)).values(finished_at=now)
            ).rowcount
            if not won:
                return False
            newest, mode = conn.execute(
                select(FEED.newest_seen, RUN.mode)
                .join(SYNC_RUN, RUN.run_id == FEED.run_id)
                .where(FEED.run_id == run_id, FEED.feed == feed)
            ).one()
            self._advance_cursor(conn, source, feed, newest, now, full=(mode == "full"))
        return True

    def finish_run_if_complete(self, run_id: str, feeds: int, now: datetime) -> bool:
        """Close the run once ``feeds`` of its feeds finished; True for the one caller that
        closed it, so what a finished run triggers (its summary, its reconcile) happens once.

        Called after ``finish_feed_if_complete`` committed, in a transaction of its own: two
        feeds finishing at once each count the other's commit or lose the row to it (a count in
        the feed's own transaction would miss the other's uncommitted row, and neither would
        close the run)."""
        finished = (
            select(func.count())
            .where(FEED.run_id == run_id, FEED.finished_at.is_not(None))
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(SYNC_RUN)
                    .where(RUN.run_id == run_id, RUN.finished_at.is_(None), finished >= feeds)
                    .values(finished_at=now)
                ).rowcount
            )

    def interrupt_run(self, run_id: str, now: datetime) -> bool:
        """Mark an open run interrupted (recovery: nothing works on it any more)."""
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(SYNC_RUN)
                    .where(RUN.run_id == run_id, RUN.finished_at.is_(None))
                    .where(RUN.interrupted_at.is_(None))
                    .values(interrupted_at=now)
                ).rowcount
            )

    def finish_run(self, run_id: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(SYNC_RUN)
                .where(RUN.run_id == run_id, RUN.finished_at.is_(None))
                .values(finished_at=now)
            )

    # --- reading runs back

    def summary(self, run_id: str) -> RunSummary | None:
        found = self._summaries(SUMMARY.where(RUN.run_id == run_id))
        return found[0] if found else None

    def latest_runs(self, source: str, limit: int = 1, mode: str | None = None) -> list[RunSummary]:
        """The ``limit`` latest runs of ``source`` (in ``mode``), newest first."""
        stmt = SUMMARY.where(RUN.source == source)
        if mode is not None:
            stmt = stmt.where(RUN.mode == mode)
        newest_first = (RUN.started_at.desc(), RUN.run_id.desc())
        return self._summaries(stmt.order_by(*newest_first).limit(limit))

    def unfinished_runs(self, sources: Sequence[str], since: datetime) -> list[RunSummary]:
        """Runs of ``sources`` started after ``since``, neither closed nor interrupted, with a
        planned feed unfinished or none planned yet."""
        plans = select(FEED.run_id).where(FEED.run_id == RUN.run_id)
        return self._summaries(
            SUMMARY.where(RUN.source.in_(list(sources)), RUN.started_at >= since)
            .where(RUN.finished_at.is_(None), RUN.interrupted_at.is_(None))
            .where(~plans.exists() | plans.where(FEED.finished_at.is_(None)).exists())
        )

    def feed_gaps(self, run_id: str) -> dict[str, tuple[int, ...] | None]:
        """Each planned feed of the run → its pages not done yet, or None once it finished."""
        with self._reader.connect() as conn:
            plans = conn.execute(
                select(FEED.feed, FEED.pages_expected, FEED.finished_at).where(
                    FEED.run_id == run_id
                )
            ).all()
            done = set(conn.execute(select(ITEM.item).where(ITEM.run_id == run_id)).scalars())
        return {
            feed: None
            if finished is not None
            else tuple(n for n in range(1, expected + 1) if f"{feed}#{n}" not in done)
            for feed, expected, finished in plans
        }

    def interrupted_counts(self, sources: Sequence[str], since: datetime) -> dict[str, int]:
        """source → how many of its runs started after ``since`` were interrupted."""
        stmt = (
            select(RUN.source, func.count())
            .where(RUN.source.in_(list(sources)), RUN.started_at >= since)
            .where(RUN.interrupted_at.is_not(None))
            .group_by(RUN.source)
        )
        with self._reader.connect() as conn:
            return {source: int(n) for source, n in conn.execute(stmt)}

    def first_runs(self) -> dict[str, datetime]:
        """source → when its first run started, for every source that has run."""
        stmt = select(RUN.source, func.min(RUN.started_at)).group_by(RUN.source)
        with self._reader.connect() as conn:
            return {source: started for source, started in conn.execute(stmt)}

    def _summaries(self, stmt: Select[Any]) -> list[RunSummary]:
        with self._reader.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        flags = ("closed", "interrupted")
        return [RunSummary(**{**row, **{f: bool(row[f]) for f in flags}}) for row in rows]

    # --- cursors

    def high_water(self, source: str, feed: str) -> datetime | None:
        with self._reader.connect() as conn:
            return conn.execute(
                select(CURSOR.high_water).where(CURSOR.source == source, CURSOR.feed == feed)
            ).scalar_one_or_none()

    def cursors(self) -> list[Cursor]:
        """Every cursor, by source and feed (each source's ``SOURCE_FEED`` row among them)."""
        stmt = select(
            CURSOR.source,
            CURSOR.feed,
            CURSOR.high_water,
            CURSOR.last_full_scan_at,
            CURSOR.last_success_at,
            CURSOR.last_error,
        ).order_by(CURSOR.source, CURSOR.feed)
        with self._reader.connect() as conn:
            return [Cursor(*row) for row in conn.execute(stmt)]

    def mark_source(self, source: str, now: datetime, error: str | None) -> None:
        """Record a source's last success (error None) or its latest error, for meta-alerts."""
        values: dict[str, Any] = {"updated_at": now, "last_error": error}
        if error is None:
            values["last_success_at"] = now
        with self._engine.begin() as conn:
            self._set_cursor(conn, source, SOURCE_FEED, now, values)

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
        values: dict[str, Any] = {"updated_at": now, "last_success_at": now, "last_error": None}
        if full:
            values["last_full_scan_at"] = now
        self._set_cursor(conn, source, feed, now, values)
        if newest is not None:
            conn.execute(
                _cursor(source, feed)
                .where((CURSOR.high_water.is_(None)) | (CURSOR.high_water < newest))
                .values(high_water=newest)
            )

    @staticmethod
    def _set_cursor(
        conn: Connection, source: str, feed: str, now: datetime, values: dict[str, Any]
    ) -> None:
        _insert_ignore(conn, SYNC_CURSOR, {"source": source, "feed": feed, "updated_at": now})
        conn.execute(_cursor(source, feed).values(**values))


def _feed(run_id: str, feed: str) -> Any:
    """UPDATE of one feed plan of one run (narrow it further with ``.where``)."""
    return update(SYNC_RUN_FEED).where(FEED.run_id == run_id, FEED.feed == feed)


def _newest(run_id: str, feed: str, newest: datetime) -> Any:
    """UPDATE of a feed plan's newest creation time seen, when ``newest`` is later."""
    return (
        _feed(run_id, feed)
        .where((FEED.newest_seen.is_(None)) | (FEED.newest_seen < newest))
        .values(newest_seen=newest)
    )


def _cursor(source: str, feed: str) -> Any:
    """UPDATE of one cursor (narrow it further with ``.where``)."""
    return update(SYNC_CURSOR).where(CURSOR.source == source, CURSOR.feed == feed)
