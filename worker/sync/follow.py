"""Fetch a page's follow-ups (refund-infos, payments) at once, to append them with the page.

Each source gets one thread pool for the life of the process, as wide as its concurrency, so
the threads of every page share it and never outnumber the source's slots; the source's own
limiter still paces every request (concurrency slots and the requests-per-second rate). A
follow-up whose fetch fails is handed back for a per-object message: its retries then follow
the message's backoff, as before, and never hold the page.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ledger.model import RawRecord, Rejected
from worker.errors import ProviderError
from worker.gateways.contract import FollowUp, Source
from worker.logging import get_logger

log = get_logger(__name__)

DEFAULT_WIDTH = 4  # a source that does not say its concurrency (test doubles)

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


@dataclass
class Fetched:
    """What a batch of follow-up fetches returned, in the order asked."""

    records: list[RawRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    failed: list[FollowUp] = field(default_factory=list)  # to send as per-object messages
    asked: list[FollowUp] = field(default_factory=list)  # every one attempted

    def done(self) -> set[tuple[str, str]]:
        """(kind, external_id) of the follow-ups answered (a record, a reject or none)."""
        failed = {(f.kind, f.external_id) for f in self.failed}
        return {(f.kind, f.external_id) for f in self.asked} - failed


def width(src: Source) -> int:
    """How many requests ``src`` may have in flight (its ``concurrency``, if it says)."""
    value = getattr(src, "concurrency", DEFAULT_WIDTH)
    return value if isinstance(value, int) and value > 0 else DEFAULT_WIDTH


def _pool(src: Source) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(src.name)
        if pool is None:
            pool = ThreadPoolExecutor(width(src), thread_name_prefix=f"{src.name}-follow-up")
            _pools[src.name] = pool
        return pool


def _one(src: Source, follow_up: FollowUp) -> RawRecord | Rejected | ProviderError | None:
    try:
        return src.fetch_object(follow_up.kind, follow_up.external_id)
    except ProviderError as exc:
        return exc


def fetch_follow_ups(src: Source, wanted: list[FollowUp]) -> Fetched:
    """Fetch ``wanted`` on the source's pool; a provider error leaves that one in ``failed``."""
    out = Fetched(asked=list(wanted))
    if not wanted:
        return out
    if len(wanted) == 1:
        answers = [_one(src, wanted[0])]
    else:
        pool = _pool(src)
        # Each fetch runs in a copy of this thread's context: its log lines carry the message's
        # actor and id, as if this thread had made the request.
        futures = [pool.submit(contextvars.copy_context().run, _one, src, w) for w in wanted]
        answers = [f.result() for f in futures]
    for follow_up, answer in zip(wanted, answers, strict=True):
        if isinstance(answer, RawRecord):
            out.records.append(answer)
        elif isinstance(answer, Rejected):
            out.rejected.append(answer)
        elif isinstance(answer, ProviderError):
            log.info(
                "follow_up_deferred",
                source=src.name,
                kind=follow_up.kind,
                external_id=follow_up.external_id,
                error=str(answer),
            )
            out.failed.append(follow_up)
    return out
