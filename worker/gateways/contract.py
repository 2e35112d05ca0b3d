"""What the sync engine needs from a payment gateway: the ``Source`` protocol and its page value.

Each provider package adapts its client to this protocol (``worker/providers/<name>/source.py``),
so adding a gateway adds an adapter and touches neither the sync engine nor the ledger core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger.model import RawRecord, Rejected, Snapshot


@dataclass(frozen=True)
class FetchedPage:
    """One page of one feed, validated: good records (with their creation times) and rejects."""

    feed: str
    number: int
    max_page: int
    total: int
    records: tuple[RawRecord, ...]
    created: tuple[datetime | None, ...]  # creation time per record, for incremental stops
    rejected: tuple[Rejected, ...]

    @property
    def empty(self) -> bool:
        return not self.records and not self.rejected


@dataclass(frozen=True)
class FollowUp:
    """A single object to (re)fetch after a commit, e.g. the refund-info of a refunded order."""

    kind: str
    external_id: str


class LatestLookup(Protocol):
    """The ledger read a source needs to decide follow-ups."""

    def latest_many(
        self, source: str, kind: str, external_ids: Sequence[str]
    ) -> dict[str, Snapshot]: ...


class Source(Protocol):
    """A gateway as the sync engine sees it."""

    name: str
    feeds: tuple[str, ...]

    def fetch_page(self, feed: str, page: int) -> FetchedPage:
        """Fetch and validate one page (raises worker.errors.ProviderError on failure)."""
        ...

    def fetch_object(self, kind: str, external_id: str) -> RawRecord | Rejected | None:
        """Fetch one object by id; None when the provider has none (e.g. no refund yet)."""
        ...

    def follow_ups(
        self,
        records: Sequence[RawRecord],
        new_keys: set[tuple[str, str]],
        ledger: LatestLookup,
        *,
        rescan: bool,
    ) -> Sequence[FollowUp]:
        """Objects to fetch after ``records`` were appended.

        ``new_keys`` holds (kind, external_id) of the records that made a new version; on a
        ``rescan`` (full scan) objects seen again may also be re-fetched until they look final.
        """
        ...

    def close(self) -> None: ...
