"""The reconcile service: run the rules over what changed (or everything), persist the alerts, and
return the notifications for the caller to send *after* the commit.

Incremental: snapshots with seq > the stored cursor, a window at a time; each subject the
window changed is judged once, a chunk of subjects at a time, with only their related latest
snapshots loaded, so a run costs what was appended, not the ledger's size. Full (``--all``):
every latest object, then the cursor moves to the head read at the start. Both then sweep the
subjects only the clock can break (a REFUNDED order still without refund-info) and judge the
meta-alerts. The rules per source come from the context's plans (a
``ledger.reconcile.plans.PlanTable``, source name → plan); snapshots of a source with no plan
are left unjudged. Every chunk plans from the cursor it read and commits with a compare-and-set
on it; a conflict re-plans the chunk.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from ledger.alerts.state import plan as plan_actions
from ledger.alerts.store import AlertStore, Commit, Cursor, Notification, ReconcileConflict
from ledger.alerts.suspense import suspense_links
from ledger.model import Snapshot
from ledger.reconcile.incidents import incidents
from ledger.reconcile.meta import evaluate_meta
from ledger.reconcile.plans import Evaluation, Loaded, PlanTable, SourcePlan, Terms, Work
from ledger.reconcile.policy import RulePolicy
from ledger.storage import reads
from ledger.storage.engine import read_only
from ledger.storage.store import LedgerStore
from worker.config import Settings
from worker.logging import get_logger
from worker.sync.facts import latest_run_rejects, source_health

log = get_logger(__name__)

CHUNK = 2000  # subjects judged per commit
# Changed snapshots read (their keys only) per incremental pass. An order and its transaction
# often land thousands of snapshots apart (two feeds synced side by side); judging the order
# once per window, not once per 2,000 snapshots, saves judging it again when its transaction
# arrives in a later chunk (up to 70% more order evaluations on a first sync otherwise).
WINDOW = 20_000
MAX_ATTEMPTS = 8


@dataclass
class ReconcileContext:
    store: LedgerStore
    alerts: AlertStore
    plans: PlanTable  # source name → the plan that judges it
    now: Callable[[], datetime]
    refund_grace: timedelta
    source_down_after: timedelta
    max_rejected_per_run: int
    chunk: int = CHUNK
    window: int = WINDOW
    policy: RulePolicy = field(default_factory=RulePolicy)  # TALLY_RULES

    @classmethod
    def from_settings(
        cls,
        store: LedgerStore,
        settings: Settings,
        now: Callable[[], datetime],
        plans: PlanTable,
    ) -> ReconcileContext:
        return cls(
            store,
            AlertStore(store.engine),
            plans,
            now,
            timedelta(seconds=settings.tally_refund_grace_seconds),
            timedelta(seconds=settings.tally_source_down_alert_seconds),
            settings.tally_max_rejected_per_run,
            policy=settings.rule_policy,
        )

    def loaded(
        self, source: str, preloaded: Mapping[str, Mapping[str, Snapshot]] | None = None
    ) -> Loaded:
        """A fresh read-through cache of latest snapshots and links for one unit of work."""
        return Loaded(StoreLookup(self.store, self.alerts), source, preloaded)


class StoreLookup:
    """``ledger.reconcile.plans.Lookup`` over the ledger store and reconcile's link index."""

    def __init__(self, store: LedgerStore, alerts: AlertStore) -> None:
        self._store = store
        self._alerts = alerts

    def latest(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, Snapshot]:
        return self._store.latest_many(source, kind, ids)

    def linked(self, source: str, link: str, ids: Sequence[str]) -> dict[str, set[str]]:
        return self._alerts.linked(source, link, ids)

    def versions(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, list[Snapshot]]:
        return self._store.versions_many(source, kind, ids)


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
        while _changed_window(ctx, report, now):
            pass
    _sweep(ctx, now, report)
    _commit(ctx, report, lambda cursor: _meta(ctx, cursor, now))
    report.cursor_to = ctx.alerts.cursor().last_seq
    c = report.counts
    # an idle reconcile (nothing new, nothing changed) is debug: quiet when idle
    changed = c["snapshots"] or c["findings"] or c["open"] or c["update"] or c["resolve"]
    (log.info if changed else log.debug)(
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
            # Expected when another process committed first; only giving up is worth a line.
            log.debug("reconcile_conflict", attempt=attempt + 1, reason=str(exc))
            time.sleep(0.02 * 2**attempt)
            continue
        report.counts.update(work.stats)
        report.counts.update(action.kind for action in work.actions)
        return True
    raise ReconcileConflict(f"gave up after {MAX_ATTEMPTS} conflicting attempts")


def _changed_window(ctx: ReconcileContext, report: ReconcileReport, now: datetime) -> bool:
    """Judge the subjects of the next window of snapshots after the cursor, a chunk at a time,
    then move the cursor past the window. False when nothing is new.

    The chunks leave the cursor where it is: a crash in between judges the window again, which
    changes nothing the first pass committed. A chunk planned after another process moved the
    cursor past the window is skipped; the cursor never moves back."""
    S = reads.S
    start = ctx.alerts.cursor().last_seq
    stmt = (
        select(S.seq, S.source, S.kind, S.external_id)
        .where(S.seq > start)
        .order_by(S.seq)
        .limit(ctx.window)
    )
    with read_only(ctx.store.engine).connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return False
    end = rows[-1].seq
    for source, plan in ctx.plans.items():
        changed = list(dict.fromkeys((r.kind, r.external_id) for r in rows if r.source == source))
        if not changed:
            continue
        for work in _chunks(plan.for_changes(changed, ctx.loaded(source)), ctx.chunk):

            def planner(
                cursor: Cursor, plan: SourcePlan = plan, work: Work = work
            ) -> Commit | None:
                if cursor.last_seq >= end:
                    return None
                return _work(ctx, cursor, plan, work, now, ctx.loaded(plan.source))

            _commit(ctx, report, planner)

    def moved(cursor: Cursor) -> Commit | None:
        if cursor.last_seq >= end:
            return None
        return Commit(cursor.version, now, last_seq=end, stats={"snapshots": len(rows)})

    _commit(ctx, report, moved)
    return True


def _chunks(work: Work, size: int) -> Iterator[Work]:
    """``work`` in pieces of at most ``size`` subjects, each id keeping its roles (an order
    judged as an order and for its refund loads its snapshots once)."""
    ids = sorted(set().union(*work.ids.values()))
    for first in range(0, len(ids), size):
        part = frozenset(ids[first : first + size])
        yield Work(work.source, {role: members & part for role, members in work.ids.items()})


def _full(ctx: ReconcileContext, now: datetime, report: ReconcileReport) -> None:
    head = ctx.store.head()[0]
    for plan in ctx.plans.values():
        for kind in plan.kinds:
            after: str | None = ""
            while after is not None:
                after = _full_page(ctx, report, plan, kind, after, now)
    _commit(
        ctx,
        report,
        lambda cursor: Commit(cursor.version, now, last_seq=max(cursor.last_seq, head), full=True),
    )


def _full_page(
    ctx: ReconcileContext,
    report: ReconcileReport,
    plan: SourcePlan,
    kind: str,
    after: str,
    now: datetime,
) -> str | None:
    """Reconcile the next page of latest ``kind`` objects; where the next page starts, or None."""
    page: list[Snapshot] = []

    def planner(cursor: Cursor) -> Commit | None:
        stmt = reads.latest_rows(plan.source, kind).where(reads.S.external_id > after)
        with read_only(ctx.store.engine).connect() as conn:
            rows = conn.execute(stmt.order_by(reads.S.external_id).limit(ctx.chunk)).all()
        page[:] = [reads.to_snapshot(row) for row in rows]
        if not page:
            return None
        work = plan.for_kind(kind, frozenset(s.external_id for s in page))
        data = ctx.loaded(plan.source, {kind: {s.external_id: s for s in page}})
        commit = _work(ctx, cursor, plan, work, now, data)
        return dataclasses.replace(commit, stats={**commit.stats, "snapshots": len(page)})

    _commit(ctx, report, planner)
    return page[-1].external_id if len(page) == ctx.chunk else None


def _sweep(ctx: ReconcileContext, now: datetime, report: ReconcileReport) -> None:
    """Some rules turn true with time alone (``refund-missing``): re-judge the waiting
    subjects. Their index rows exist already, so only alert changes are written."""
    for source, subject_ids in ctx.alerts.waiting().items():
        plan = ctx.plans.get(source)
        if plan is None:
            continue
        for start in range(0, len(subject_ids), ctx.chunk):
            work = plan.for_sweep(frozenset(subject_ids[start : start + ctx.chunk]))

            def planner(cursor: Cursor, plan: SourcePlan = plan, work: Work = work) -> Commit:
                commit = _work(ctx, cursor, plan, work, now, ctx.loaded(plan.source))
                return dataclasses.replace(commit, links=(), waiting=())

            _commit(ctx, report, planner)


def _work(
    ctx: ReconcileContext,
    cursor: Cursor,
    plan: SourcePlan,
    work: Work,
    now: datetime,
    data: Loaded,
) -> Commit:
    """Run ``work`` through its plan (which reads what it needs) and plan the alert changes."""
    terms = Terms(ctx.store.precision, now, ctx.refund_grace, ctx.policy)
    found = plan.evaluate(work, data, terms)
    # One alert per cause: the policy drops disabled rules and sets severities, then each
    # rule's findings on one subject fold into one incident.
    found.findings = incidents(ctx.policy.apply(plan.rules, found.findings))
    commit = _planned(ctx, cursor, now, work.source, found)
    stats = {"evaluated": len(found.scopes), "findings": len(found.findings)}
    return dataclasses.replace(commit, stats=stats)


def _planned(
    ctx: ReconcileContext, cursor: Cursor, now: datetime, source: str, found: Evaluation
) -> Commit:
    subjects = {subject for _, _, subject in found.scopes} | {f.subject_id for f in found.findings}
    alerts = ctx.alerts.alerts_for(source, subjects)
    actions = plan_actions(alerts, found.findings, found.scopes, now)
    announced = [a.finding for a in actions if a.kind in ("open", "update") and a.finding]
    return Commit(
        cursor.version,
        now,
        actions,
        suspense=suspense_links(ctx.store.engine, announced, found.loaded),
        links=found.links,
        waiting=found.waiting,
        settled=found.settled,
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
            findings=incidents(ctx.policy.apply({}, (f for f in findings if f.source == source))),
            scopes={scope for scope in scopes if scope[0] == source},
        )
        commits.append(_planned(ctx, cursor, now, source, found))
    return _merge(cursor, now, commits) if any(c.actions for c in commits) else None


def _merge(cursor: Cursor, now: datetime, commits: list[Commit]) -> Commit:
    stats: Counter[str] = Counter()
    for commit in commits:
        stats.update(commit.stats)
    return Commit(
        cursor.version,
        now,
        [a for c in commits for a in c.actions],
        suspense={k: v for c in commits for k, v in c.suspense.items()},
        links=[x for c in commits for x in c.links],
        waiting=[x for c in commits for x in c.waiting],
        settled=[x for c in commits for x in c.settled],
        stats=dict(stats),
    )
