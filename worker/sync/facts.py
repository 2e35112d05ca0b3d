"""Facts about the sync that the meta-alerts judge: each source's last success and latest error,
and the rejected records of its latest complete run. Reads only; a few rows per source.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from ledger.reconcile.meta import RunRejects, SourceHealth
from ledger.storage.engine import read_only
from worker.sync.state import CURSOR, FEED, ITEM, RUN

SOURCE_FEED = "_source"  # the sync_cursor row RunState.mark_source keeps per source
RECENT_RUNS = 20  # how far back to look for a complete run


def source_health(engine: Engine) -> list[SourceHealth]:
    """One entry per source that has ever been called."""
    with read_only(engine).connect() as conn:
        rows = conn.execute(
            select(CURSOR.c.source, CURSOR.c.last_success_at, CURSOR.c.last_error)
            .where(CURSOR.c.feed == SOURCE_FEED)
            .order_by(CURSOR.c.source)
        ).all()
        first_run = {
            source: started
            for source, started in conn.execute(
                select(RUN.c.source, func.min(RUN.c.started_at)).group_by(RUN.c.source)
            )
        }
    return [
        SourceHealth(row.source, row.last_success_at, row.last_error, first_run.get(row.source))
        for row in rows
    ]


def latest_run_rejects(engine: Engine) -> list[RunRejects]:
    """Per source, the rejected count of its latest complete run (finished, or every planned
    feed finished); a run still in progress is not judged, so its count cannot flap."""
    found: list[RunRejects] = []
    with read_only(engine).connect() as conn:
        sources = conn.execute(select(RUN.c.source).distinct().order_by(RUN.c.source)).scalars()
        for source in list(sources):
            run_id = _latest_complete(conn, source)
            if run_id is None:
                continue
            rejected = conn.execute(
                select(func.coalesce(func.sum(ITEM.c.rejected), 0)).where(ITEM.c.run_id == run_id)
            ).scalar_one()
            found.append(RunRejects(source, run_id, int(rejected)))
    return found


def _latest_complete(conn: Connection, source: str) -> str | None:
    runs = conn.execute(
        select(RUN.c.run_id, RUN.c.finished_at)
        .where(RUN.c.source == source)
        .order_by(RUN.c.started_at.desc(), RUN.c.run_id.desc())
        .limit(RECENT_RUNS)
    ).all()
    for run_id, finished_at in runs:
        if finished_at is not None:
            return str(run_id)
        feeds = conn.execute(
            select(func.count(), func.count(FEED.c.finished_at)).where(FEED.c.run_id == run_id)
        ).one()
        if feeds[0] and feeds[0] == feeds[1]:
            return str(run_id)
    return None
