"""Sync services: fetch a page or an object from a source and append it to the ledger.

Plain functions over injected collaborators (store, run state, source, clock); the dramatiq
actors in ``worker/sync/actors.py`` are thin shells over them. Every function is idempotent: the
ledger's natural keys make a second run append nothing. Follow-up work is *returned*, so the
caller sends it only after the page's transaction has committed. Creation times beyond now +
``future_skew`` are stored with their records but never count for a cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ledger.model import RawRecord, Rejected
from ledger.storage.store import LedgerStore
from worker import metrics
from worker.gateways.contract import FetchedPage, FollowUp, Source
from worker.logging import get_logger
from worker.sync.state import RunState

log = get_logger(__name__)


@dataclass(frozen=True)
class PageOutcome:
    """What one page did to the ledger, and what must happen next."""

    page: FetchedPage
    new_snapshots: int
    journal_entries: int
    follow_ups: tuple[FollowUp, ...] = field(default=())

    @property
    def oldest(self) -> datetime | None:
        times = [t for t in self.page.created if t is not None]
        return min(times) if times else None

    @property
    def newest(self) -> datetime | None:
        times = [t for t in self.page.created if t is not None]
        return max(times) if times else None


@dataclass(frozen=True)
class ScanPlan:
    """Pages still to fetch after the first one (fanned out as messages for a full scan)."""

    feed: str
    mode: str
    pages: tuple[int, ...]
    max_page: int


@dataclass
class SyncContext:
    """The collaborators a sync service needs, created once per process."""

    store: LedgerStore
    state: RunState
    sources: dict[str, Source]
    now: Callable[[], datetime]
    lookback: timedelta
    future_skew: timedelta  # TALLY_FUTURE_SKEW_SECONDS

    def horizon(self) -> datetime:
        """The latest creation time a cursor may take: later ones are from the future."""
        return self.now() + self.future_skew

    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise LookupError(f"source {name!r} is not configured") from None


def sync_page(
    ctx: SyncContext, source: str, feed: str, number: int, run_id: str, *, rescan: bool
) -> PageOutcome:
    """Fetch one page, append it in one transaction, record it on the run, return follow-ups."""
    src = ctx.source(source)
    page = src.fetch_page(feed, number)
    outcome = _append(ctx, src, page.records, page.rejected, run_id, rescan=rescan, page=page)
    metrics.page_fetched(source, feed)
    ctx.state.record_item(
        run_id,
        f"{feed}#{number}",
        pages=1,
        new_snapshots=outcome.new_snapshots,
        journal_entries=outcome.journal_entries,
        rejected=len(page.rejected),
    )
    return outcome


def sync_object(
    ctx: SyncContext, source: str, kind: str, external_id: str, run_id: str | None
) -> PageOutcome:
    """Fetch one object (order detail, refund-info) and append it; None from the source: no-op."""
    src = ctx.source(source)
    fetched = src.fetch_object(kind, external_id)
    records: tuple[RawRecord, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    if isinstance(fetched, RawRecord):
        records = (fetched,)
    elif isinstance(fetched, Rejected):
        rejected = (fetched,)
    page = FetchedPage(kind, 0, 0, len(records), records, (None,) * len(records), rejected)
    outcome = _append(ctx, src, records, rejected, run_id, rescan=False, page=page)
    if run_id:
        ctx.state.record_item(
            run_id,
            f"{kind}:{external_id}",
            pages=0,
            new_snapshots=outcome.new_snapshots,
            journal_entries=outcome.journal_entries,
            rejected=len(rejected),
        )
    return outcome


def _append(
    ctx: SyncContext,
    src: Source,
    records: Sequence[RawRecord],
    rejected: Sequence[Rejected],
    run_id: str | None,
    *,
    rescan: bool,
    page: FetchedPage,
) -> PageOutcome:
    page, future = _cursor_times(page, ctx.horizon())
    result = ctx.store.append(records, observed_at=ctx.now(), rejected=rejected, run_id=run_id)
    metrics.appended(
        src.name,
        snapshots=len(result.new_snapshots),
        journal_entries=result.journal_entries,
        rejected=len(rejected),
        quarantined=result.quarantined,
    )
    new_ids = {(s.kind, s.external_id) for s in result.new_snapshots}
    for record, created in future:
        if (record.kind, record.external_id) in new_ids:  # once per stored version
            log.warning(
                "record_from_the_future",
                source=record.source,
                kind=record.kind,
                external_id=record.external_id,
                created=created.isoformat(),
            )
    follow_ups = src.follow_ups(records, new_ids, ctx.store, rescan=rescan)
    return PageOutcome(page, len(result.new_snapshots), result.journal_entries, tuple(follow_ups))


def begin_scan(
    ctx: SyncContext, source: str, feed: str, mode: str, run_id: str
) -> tuple[PageOutcome, ScanPlan]:
    """Sync the first page of a feed and plan the rest.

    A full scan returns every remaining page for fan-out. An incremental scan returns only the
    pages that may hold new objects: it stops at the first page whose oldest object is older
    than the high-water mark minus the lookback window. The feed's order is detected from the
    first page: newest-first (documented behaviour) walks forward from page 1; an oldest-first
    API walks backward from the last page.
    """
    first = sync_page(ctx, source, feed, 1, run_id, rescan=(mode == "full"))
    max_page = first.page.max_page
    remaining = tuple(range(2, max_page + 1))
    if mode == "full" or max_page <= 1:
        return first, ScanPlan(feed, mode, remaining, max_page)
    high_water = _high_water(ctx, source, feed)
    if high_water is None:  # never synced: an incremental run is a full one
        return first, ScanPlan(feed, "full", remaining, max_page)
    floor = high_water - ctx.lookback
    if _oldest_first(first.page):
        return first, ScanPlan(feed, mode, tuple(range(max_page, 1, -1)), max_page)
    if first.oldest is not None and first.oldest < floor:
        return first, ScanPlan(feed, mode, (), max_page)
    return first, ScanPlan(feed, mode, remaining, max_page)


def reached_floor(
    ctx: SyncContext, source: str, feed: str, outcome: PageOutcome, *, oldest_first: bool
) -> bool:
    """True when an incremental walk reached objects older than the high-water mark − lookback."""
    high_water = _high_water(ctx, source, feed)
    if high_water is None:
        return False
    floor = high_water - ctx.lookback
    edge = outcome.newest if oldest_first else outcome.oldest
    return edge is not None and edge < floor


def _cursor_times(
    page: FetchedPage, horizon: datetime
) -> tuple[FetchedPage, list[tuple[RawRecord, datetime]]]:
    """``page`` with every creation time beyond ``horizon`` left out, and the records whose
    time it was.

    Creation times move the high-water mark, stop incremental walks and tell a feed's order.
    One from the future (a wrong clock, a 9999-12-31 placeholder) would become the mark for
    good, and every later incremental walk would stop after its first page. The record itself
    is stored as received; only its time does not count for the cursor.
    """
    sane = tuple(None if t is None or t > horizon else t for t in page.created)
    future = [
        (record, created)
        for record, created, kept in zip(page.records, page.created, sane, strict=True)
        if created is not None and kept is None
    ]
    return (replace(page, created=sane), future) if future else (page, [])


def _high_water(ctx: SyncContext, source: str, feed: str) -> datetime | None:
    """The feed's high-water mark; one beyond the horizon (stored before that rule existed)
    counts as none, so the walk reads the whole feed rather than stop at its first page."""
    mark = ctx.state.high_water(source, feed)
    return None if mark is not None and mark > ctx.horizon() else mark


def _oldest_first(page: FetchedPage) -> bool:
    times = [t for t in page.created if t is not None]
    return len(times) >= 2 and times[0] < times[-1]


def is_oldest_first(page: FetchedPage) -> bool:
    return _oldest_first(page)
