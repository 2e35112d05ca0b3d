"""The reconcile service: run the rules over what changed (or everything), persist the alerts, and
return the notifications for the caller to send *after* the commit.

Incremental: snapshots with seq > the stored cursor, a chunk at a time; each chunk's subjects
and only their related latest snapshots are loaded, so a run costs what was appended, not the
ledger's size. Full (``--all``): every latest object, then the cursor moves to the head read at
the start. Both then sweep the REFUNDED orders still awaiting refund-info (``refund-missing``
depends on the clock) and judge the meta-alerts. Every chunk plans from the cursor it read and
commits with a compare-and-set on it; a conflict re-plans the chunk.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from ledger import reads
from ledger.alert_store import AlertStore, Commit, Cursor, Notification, ReconcileConflict
from ledger.alerts import plan
from ledger.db import read_only
from ledger.meta_alerts import evaluate_meta
from ledger.model import Snapshot
from ledger.reconcile import (
    KINDS,
    ORDER,
    REFUND,
    TRANSACTION,
    Evaluation,
    Work,
    evaluate,
    work_from_changes,
)
from ledger.store import LedgerStore
from ledger.suspense import suspense_links
from worker.config import Settings
from worker.logging import get_logger
from worker.sync_health import latest_run_rejects, source_health

log = get_logger(__name__)

RULE_SOURCES = ("aurpay",)  # sources whose objects have rules (see ledger.reconcile)
CHUNK = 2000
MAX_ATTEMPTS = 8
Loaded = dict[str, dict[str, Snapshot]]


@dataclass
class ReconcileContext:
    store: LedgerStore
    alerts: AlertStore
    now: Callable[[], datetime]
    refund_grace: timedelta
    source_down_after: timedelta
    max_rejected_per_run: int
    chunk: int = CHUNK

    @classmethod
    def from_settings(
        cls, store: LedgerStore, settings: Settings, now: Callable[[], datetime]
    ) -> ReconcileContext:
        return cls(
            store,
            AlertStore(store.engine),
            now,
            timedelta(seconds=settings.tally_refund_grace_seconds),
            timedelta(seconds=settings.tally_source_down_alert_seconds),
            settings.tally_max_rejected_per_run,
        )


@dataclass
class ReconcileReport:
    mode: str
    cursor_from: int = 0
    cursor_to: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # snapshots, evaluated, open, …
    notifications: list[Notification] = field(default_factory=list)


def reconcile(ctx: ReconcileContext, *, full: bool = False) -> ReconcileReport:
    """One run; ``full`` re-evaluates every latest object instead of what changed."""
    started = time.monotonic()
    now = ctx.now()
    report = ReconcileReport("full" if full else "incremental", ctx.alerts.cursor().last_seq)
    if full:
        _full(ctx, now, report)
    else:
        while _commit(ctx, report, lambda cursor: _changed_chunk(ctx, cursor, now)):
            pass
    _sweep(ctx, now, report)
    _commit(ctx, report, lambda cursor: _meta(ctx, cursor, now))
    report.cursor_to = ctx.alerts.cursor().last_seq
    c = report.counts
    log.info(
        "reconcile_finished",
        mode=report.mode,
        cursor_from=report.cursor_from,
        cursor_to=report.cursor_to,
        snapshots=c["snapshots"],
        evaluated=c["evaluated"],
        findings=c["findings"],
        opened=c["open"],
        updated=c["update"],
        resolved=c["resolve"],
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return report


def _commit(
    ctx: ReconcileContext, report: ReconcileReport, planner: Callable[[Cursor], Commit | None]
) -> bool:
    """Plan from a fresh cursor and commit; re-plan on conflict. False when nothing to do."""
    for attempt in range(MAX_ATTEMPTS):
        work = planner(ctx.alerts.cursor())
        if work is None:
            return False
        try:
            if not work.empty:
                report.notifications += ctx.alerts.commit(work)
        except ReconcileConflict as exc:
            log.info("reconcile_conflict", attempt=attempt + 1, reason=str(exc))
            time.sleep(0.02 * 2**attempt)
            continue
        report.counts.update(work.stats)
        report.counts.update(action.kind for action in work.actions)
        return True
    raise ReconcileConflict(f"gave up after {MAX_ATTEMPTS} conflicting attempts")


def _changed_chunk(ctx: ReconcileContext, cursor: Cursor, now: datetime) -> Commit | None:
    """The next chunk of snapshots after the cursor: their subjects re-evaluated."""
    S = reads.S
    stmt = (
        select(S.seq, S.source, S.kind, S.external_id)
        .where(S.seq > cursor.last_seq)
        .order_by(S.seq)
        .limit(ctx.chunk)
    )
    with read_only(ctx.store.engine).connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return None
    commits = []
    for source in RULE_SOURCES:
        changed = [(r.kind, r.external_id) for r in rows if r.source == source]
        txs = [external_id for kind, external_id in changed if kind == TRANSACTION]
        work = work_from_changes(source, changed, ctx.alerts.orders_of_tx(source, txs))
        if work:
            commits.append(_work(ctx, cursor, work, now))
    merged = _merge(cursor, now, commits, last_seq=rows[-1].seq)
    return dataclasses.replace(merged, stats=merged.stats | {"snapshots": len(rows)})


def _full(ctx: ReconcileContext, now: datetime, report: ReconcileReport) -> None:
    head = ctx.store.head()[0]
    for source in RULE_SOURCES:
        for kind in KINDS:
            after: str | None = ""
            while after is not None:
                after = _full_page(ctx, report, source, kind, after, now)
    _commit(
        ctx,
        report,
        lambda cursor: Commit(cursor.version, now, last_seq=max(cursor.last_seq, head), full=True),
    )


def _full_page(
    ctx: ReconcileContext,
    report: ReconcileReport,
    source: str,
    kind: str,
    after: str,
    now: datetime,
) -> str | None:
    """Reconcile the next page of latest ``kind`` objects; where the next page starts, or None."""
    page: list[Snapshot] = []

    def planner(cursor: Cursor) -> Commit | None:
        stmt = reads.latest_rows(source, kind).where(reads.S.external_id > after)
        with read_only(ctx.store.engine).connect() as conn:
            rows = conn.execute(stmt.order_by(reads.S.external_id).limit(ctx.chunk)).all()
        page[:] = [reads.to_snapshot(row) for row in rows]
        if not page:
            return None
        work = Work.of_kind(source, kind, frozenset(s.external_id for s in page))
        commit = _work(ctx, cursor, work, now, {kind: {s.external_id: s for s in page}})
        return dataclasses.replace(commit, stats=commit.stats | {"snapshots": len(page)})

    _commit(ctx, report, planner)
    return page[-1].external_id if len(page) == ctx.chunk else None


def _sweep(ctx: ReconcileContext, now: datetime, report: ReconcileReport) -> None:
    """``refund-missing`` turns true with time alone: re-judge the orders awaiting refund-info.
    Their index rows exist already, so only alert changes are written."""
    for source, order_ids in ctx.alerts.awaiting_refund().items():
        for start in range(0, len(order_ids), ctx.chunk):
            work = Work(source, orders=frozenset(order_ids[start : start + ctx.chunk]))

            def planner(cursor: Cursor, work: Work = work) -> Commit:
                commit = _work(ctx, cursor, work, now)
                return dataclasses.replace(commit, links=(), awaiting=())

            _commit(ctx, report, planner)


def _work(
    ctx: ReconcileContext,
    cursor: Cursor,
    work: Work,
    now: datetime,
    preloaded: Mapping[str, Mapping[str, Snapshot]] | None = None,
) -> Commit:
    """Load what ``work`` needs, run its rules, and plan the alert changes."""
    loaded = _load(ctx.store, work, preloaded or {})
    found = evaluate(work, loaded, ctx.store.precision, now, ctx.refund_grace)
    commit = _planned(ctx, cursor, now, work.source, found, loaded)
    stats = {"evaluated": len(found.scopes), "findings": len(found.findings)}
    return dataclasses.replace(commit, stats=stats)


def _load(
    store: LedgerStore, work: Work, preloaded: Mapping[str, Mapping[str, Snapshot]]
) -> Loaded:
    loaded: Loaded = {kind: dict(preloaded.get(kind, {})) for kind in KINDS}

    def fetch(kind: str, ids: Iterable[str]) -> None:
        missing = sorted(set(ids) - loaded[kind].keys())
        if missing:
            loaded[kind].update(store.latest_many(work.source, kind, missing))

    needs = work.needs()
    fetch(ORDER, needs[ORDER])
    fetch(REFUND, needs[REFUND])
    fetch(TRANSACTION, work.needs(loaded[ORDER])[TRANSACTION])
    return loaded


def _planned(
    ctx: ReconcileContext,
    cursor: Cursor,
    now: datetime,
    source: str,
    found: Evaluation,
    loaded: Loaded | None = None,
) -> Commit:
    subjects = {subject for _, _, subject in found.scopes} | {f.subject_id for f in found.findings}
    actions = plan(ctx.alerts.alerts_for(source, subjects), found.findings, found.scopes, now)
    announced = [a.finding for a in actions if a.kind in ("open", "update") and a.finding]
    return Commit(
        cursor.version,
        now,
        actions,
        suspense=suspense_links(ctx.store.engine, announced, loaded or {}),
        links=found.links,
        awaiting=found.awaiting,
        not_awaiting=found.not_awaiting,
    )


def _meta(ctx: ReconcileContext, cursor: Cursor, now: datetime) -> Commit | None:
    engine = ctx.store.engine
    findings, scopes = evaluate_meta(
        source_health(engine),
        latest_run_rejects(engine),
        now,
        ctx.source_down_after,
        ctx.max_rejected_per_run,
    )
    commits = []
    for source in sorted({scope[0] for scope in scopes}):
        found = Evaluation(
            findings=[f for f in findings if f.source == source],
            scopes={scope for scope in scopes if scope[0] == source},
        )
        commits.append(_planned(ctx, cursor, now, source, found))
    return _merge(cursor, now, commits) if any(c.actions for c in commits) else None


def _merge(
    cursor: Cursor, now: datetime, commits: list[Commit], last_seq: int | None = None
) -> Commit:
    stats: Counter[str] = Counter()
    for commit in commits:
        stats.update(commit.stats)
    return Commit(
        cursor.version,
        now,
        [a for c in commits for a in c.actions],
        suspense={k: v for c in commits for k, v in c.suspense.items()},
        links=[x for c in commits for x in c.links],
        awaiting=[x for c in commits for x in c.awaiting],
        not_awaiting=[x for c in commits for x in c.not_awaiting],
        last_seq=last_seq,
        stats=dict(stats),
    )
