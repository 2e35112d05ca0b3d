"""Run one sync to completion in this process: enqueue each feed, work the queues, report.

Used by ``tally sync --once`` and ``tally demo``. Worker threads run here whatever the broker;
with Redis, other ``tally worker`` processes may share the fan-out.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from worker.broker import InProcessWorker, wait_idle
from worker.runtime import Runtime
from worker.sync.actors import OBJECTS_QUEUE, RECONCILE_QUEUE, SYNC_QUEUE, Actors, send_reconcile
from worker.sync.state import RunSummary


@dataclass(frozen=True)
class SyncReport:
    summaries: tuple[RunSummary, ...]
    incomplete: tuple[str, ...]  # "aurpay/orders 12/50 pages"

    @property
    def ok(self) -> bool:
        return not self.incomplete and not any(s.error for s in self.summaries)

    def failure(self) -> str:
        errors = [s.error for s in self.summaries if s.error]
        if errors:
            return f"sync failed: {errors[0]}"
        return f"sync incomplete: {', '.join(self.incomplete)} (see the log for the cause)"


def new_run_id(source: str, mode: str) -> str:
    return f"{source}-{mode}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def progress_line(rt: Runtime, run_ids: dict[str, str]) -> str:
    parts = []
    for source, run_id in run_ids.items():
        for feed, (done, expected) in sorted(rt.state.feed_progress(run_id).items()):
            parts.append(f"{source}/{feed} {done}/{expected or '?'} pages")
    return " · ".join(parts) or "starting…"


def sync_once(
    rt: Runtime,
    actors: Actors,
    worker: InProcessWorker,
    *,
    sources: list[str],
    mode: str,
    timeout: float,
    on_progress: Callable[[str], None] | None = None,
) -> SyncReport:
    run_ids = {source: new_run_id(source, mode) for source in sources}
    for source, run_id in run_ids.items():
        actors.start_scan(rt.state, rt.sources[source], mode, run_id, rt.now())
    deadline = time.monotonic() + timeout
    _wait(worker, deadline, lambda: on_progress and on_progress(progress_line(rt, run_ids)))
    # Refund-infos fetched after a feed finished are reconciled here, once everything landed.
    send_reconcile(worker.broker)
    _wait(worker, deadline, lambda: None)
    incomplete = []
    for source, run_id in run_ids.items():
        for feed in rt.sources[source].feeds:
            done, expected = rt.state.feed_progress(run_id).get(feed, (0, 0))
            if expected == 0 or done < expected:
                incomplete.append(f"{source}/{feed} {done}/{expected or '?'} pages")
        rt.state.finish_run(run_id, rt.now())
    summaries = tuple(s for s in (rt.state.summary(r) for r in run_ids.values()) if s)
    return SyncReport(summaries, tuple(incomplete))


# Alert deliveries are not waited for: a receiver that is down must not hold a sync open.
WORK_QUEUES = (SYNC_QUEUE, OBJECTS_QUEUE, RECONCILE_QUEUE)


def _wait(worker: InProcessWorker, deadline: float, tick: Callable[[], object]) -> None:
    while True:
        try:
            wait_idle(worker.broker, WORK_QUEUES, timeout=0.5)
            return
        except TimeoutError:
            tick()
            if time.monotonic() > deadline:
                return


def tty_progress(stream: TextIO = sys.stderr) -> Callable[[str], None] | None:
    """A progress printer that rewrites one line, or None when not on a terminal."""
    if not stream.isatty():
        return None

    def show(line: str) -> None:
        print(f"\r\033[K{line}", end="", file=stream, flush=True)

    return show
