"""Facts about the sync that the meta-alerts judge: each source's last success and latest error,
and the rejected records of its latest complete run. Read through ``RunState``; a few rows per
source.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ledger.reconcile.meta import RunRejects, SourceHealth
from worker.sync.state import SOURCE_FEED, RunState

RECENT_RUNS = 20  # how far back to look for a complete run


def source_health(engine: Engine) -> list[SourceHealth]:
    """One entry per source that has ever been called."""
    state = RunState(engine)
    first_run = state.first_runs()
    return [
        SourceHealth(c.source, c.last_success_at, c.last_error, first_run.get(c.source))
        for c in state.cursors()
        if c.feed == SOURCE_FEED
    ]


def latest_run_rejects(engine: Engine) -> list[RunRejects]:
    """Per source, the rejected count of its latest complete run (finished, or every planned
    feed finished); a run still in progress is not judged, so its count cannot flap."""
    state = RunState(engine)
    found: list[RunRejects] = []
    for source in sorted(state.first_runs()):
        runs = state.latest_runs(source, RECENT_RUNS)
        complete = next((run for run in runs if run.finished), None)
        if complete is not None:
            found.append(RunRejects(source, complete.run_id, complete.rejected))
    return found
