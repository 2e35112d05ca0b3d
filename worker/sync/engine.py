"""Sync services: fetch a page or an object from a source and append it to the ledger.

Plain functions over injected collaborators (store, run state, source, clock); the dramatiq
actors in ``worker/sync/actors.py`` are thin shells over them. Every function is idempotent: the
ledger's natural keys make a second run append nothing. A page's follow-ups (refund-infos,
payments) are fetched at once and appended in the page's own transaction, so a scan costs about
one commit per page; the follow-ups that could not be done so are *returned*, and the caller
sends them as per-object messages only after the page's transaction has committed. Creation
times beyond now + ``future_skew`` are stored with their records but never count for a cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ledger.model import RawRecord, Rejected
from ledger.storage.changes import new_versions
from ledger.storage.store import LedgerStore
from worker import metrics
from worker.gateways.contract import FetchedPage, FollowUp, Source
from worker.logging import get_logger
from worker.sync.follow import fetch_follow_ups
from worker.sync.state import RunState

log = get_logger(__name__)

# False: every follow-up is its own message and transaction (the engine before issue 14); the
# differential test and the benchmark switch it to compare both paths on one world.
INLINE_FOLLOW_UPS = True


@dataclass(frozen=True)
class PageOutcome:
    """What one page did to the ledger, and what must happen next."""

    page: FetchedPage
    new_snapshots: int
    journal_entries: int
    follow_ups: tuple[FollowUp, ...] = field(default=())
    rejected: int = 0  # records of the page and of its follow-ups that failed validation
    fetched: tuple[FollowUp, ...] = field(default=())  # follow-ups appended with the page

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
    inline_follow_ups: bool = field(default_factory=lambda: INLINE_FOLLOW_UPS)

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
    """Fetch one page and its follow-ups, append them in one transaction, record them on the
    run, and return the follow-ups left to send."""
    src = ctx.source(source)
    read_since = ctx.now()
    page = src.fetch_page(feed, number)
    if ctx.inline_follow_ups:
        outcome = _append_with_follow_ups(ctx, src, page, run_id, read_since, rescan=rescan)
    else:
        outcome = _append(
            ctx, src, page.records, page.rejected, run_id, read_since, rescan=rescan, page=page
        )
    metrics.page_fetched(source, feed)
    # Each follow-up done is an item of the run too (what ``sync_object`` would note); the
    # page's item counts what they appended.
    ctx.state.record_page(
        run_id,
        feed,
        number,
        new_snapshots=outcome.new_snapshots,
        journal_entries=outcome.journal_entries,
        rejected=outcome.rejected,
        newest=outcome.newest,
        follow_ups=[f"{f.kind}:{f.external_id}" for f in outcome.fetched],
    )
    return outcome


def sync_object(
    ctx: SyncContext, source: str, kind: str, external_id: str, run_id: str | None
) -> PageOutcome:
    """Fetch one object (order detail, refund-info) and append it; None from the source: no-op."""
    src = ctx.source(source)
    read_since = ctx.now()
    fetched = src.fetch_object(kind, external_id)
    records: tuple[RawRecord, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    if isinstance(fetched, RawRecord):
        records = (fetched,)
    elif isinstance(fetched, Rejected):
        rejected = (fetched,)
    page = FetchedPage(kind, 0, 0, len(records), records, (None,) * len(records), rejected)
    outcome = _append(ctx, src, records, rejected, run_id, read_since, rescan=False, page=page)
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
    read_since: datetime,
    *,
    rescan: bool,
    page: FetchedPage,
) -> PageOutcome:
    page, new_ids, stored, again = _store(ctx, src, page, records, rejected, run_id, read_since)
    follow_ups = [*again, *src.follow_ups(records, new_ids, ctx.store, rescan=rescan)]
    return PageOutcome(page, *stored, tuple(dict.fromkeys(follow_ups)), len(rejected))


def _append_with_follow_ups(
    ctx: SyncContext,
    src: Source,
    page: FetchedPage,
    run_id: str,
    read_since: datetime,
    *,
    rescan: bool,
) -> PageOutcome:
    """Append ``page`` and its follow-ups in one transaction; return those left to send.

    The follow-ups are chosen before the append, from the versions the page would make
    (``new_versions``), then fetched at once. The append decides under its lock: should its
    new versions differ (another writer landed in between), the follow-ups they imply and that
    were not fetched are returned, as are those whose fetch failed and those the fetched
    objects imply in turn, exactly as ``sync_object`` would return them.
    """
    records = page.records
    page_keys = {(r.kind, r.external_id) for r in records}
    predicted = new_versions(ctx.store.engine, records)
    wanted = list(src.follow_ups(records, predicted, ctx.store, rescan=rescan))
    # One object appears once per append: a follow-up of an object on the page waits.
    clash = [w for w in wanted if (w.kind, w.external_id) in page_keys]
    fetched = fetch_follow_ups(src, [w for w in wanted if w not in clash])
    page, new_ids, stored, again = _store(
        ctx,
        src,
        page,
        [*records, *fetched.records],
        [*page.rejected, *fetched.rejected],
        run_id,
        read_since,
    )
    left: list[FollowUp] = [*clash, *fetched.failed, *again]
    page_new = new_ids & page_keys
    if page_new != predicted:
        answered = fetched.done()
        left += [
            f
            for f in src.follow_ups(records, page_new, ctx.store, rescan=rescan)
            if (f.kind, f.external_id) not in answered
        ]
    if fetched.records:
        left += src.follow_ups(fetched.records, new_ids - page_keys, ctx.store, rescan=False)
    rejected = len(page.rejected) + len(fetched.rejected)
    done = fetched.done()
    return PageOutcome(
        page,
        *stored,
        tuple(dict.fromkeys(left)),
        rejected,
        tuple(f for f in fetched.asked if (f.kind, f.external_id) in done),
    )


def _store(
    ctx: SyncContext,
    src: Source,
    page: FetchedPage,
    records: Sequence[RawRecord],
    rejected: Sequence[Rejected],
    run_id: str | None,
    read_since: datetime,
) -> tuple[FetchedPage, set[tuple[str, str]], tuple[int, int], list[FollowUp]]:
    """Append in one transaction: (the page with cursor times only up to the horizon, the
    (kind, external_id) of every new version, (new snapshots, journal entries) written, the
    objects to read again because a newer version landed while they were read)."""
    page, future = _cursor_times(page, ctx.horizon())
    result = ctx.store.append(
        records,
        observed_at=ctx.now(),
        rejected=rejected,
        run_id=run_id,
        read_since=read_since,
        refetchable=src.refetchable,
    )
    again = [FollowUp(kind, external_id) for _, kind, external_id in result.overtaken]
    for follow_up in again:
        log.info(
            "read_overtaken",
            source=src.name,
            kind=follow_up.kind,
            external_id=follow_up.external_id,
        )
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
    return page, new_ids, (len(result.new_snapshots), result.journal_entries), again


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
