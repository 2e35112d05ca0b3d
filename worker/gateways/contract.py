"""The gateway contract, stated once: what tally needs from a payment gateway, and nothing more.

A gateway is one package, ``worker/gateways/<name>/``, whose ``__init__`` exposes ``GATEWAY``: a
``Gateway`` naming its per-account settings, how to build its sync ``Source`` for one account,
its journal derivers and reconcile plan, and (optionally) its inbound callback verifier. The
registry (``worker/gateways/registry.py``) lists the gateways; the engine, CLI, health, callbacks
server, rate limiting and demo iterate it. A gateway never imports ``worker.config``: the config
loader imports the registry, and gateways must stay independent of each other.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.journal.postings import Deriver
from ledger.model import RawRecord, Rejected, Snapshot
from ledger.reconcile.plans import PlanMaker
from worker.gateways.base.http import Limiter

# --- sync: what the engine calls


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
    """A single object to (re)fetch, e.g. the refund-info of a refunded order."""

    kind: str
    external_id: str


class LatestLookup(Protocol):
    """The ledger read a source needs to decide follow-ups."""

    def latest_many(
        self, source: str, kind: str, external_ids: Sequence[str]
    ) -> dict[str, Snapshot]: ...


@dataclass(frozen=True)
class PendingFollowUp:
    """A follow-up the ledger implies but does not show done, and the seq of the snapshot that
    implies it (recovery reads the ledger again from the oldest such seq)."""

    follow_up: FollowUp
    implied_by_seq: int


class FollowUpLedger(LatestLookup, Protocol):
    """The ledger reads a source needs to find pending follow-ups (``LedgerStore`` has them)."""

    def iter_latest_since(
        self,
        source: str,
        kind: str,
        since_seq: int = 0,
        *,
        containing: str | None = None,
        without_later: str | None = None,
        batch: int = 1000,
    ) -> Iterator[Snapshot]: ...


class Source(Protocol):
    """One account of a gateway as the sync engine sees it; ``name`` is the source's name."""

    name: str
    feeds: tuple[str, ...]

    @property
    def refetchable(self) -> frozenset[str]:
        """The kinds ``fetch_object`` can read again by id."""
        ...

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
        ``rescan`` (full scan) the follow-ups of objects seen again are fetched again as well
        (a gateway setting may narrow this), unless the full scan lists them anyway: changes no
        list shows must still converge within one full scan.
        """
        ...

    def pending_follow_ups(
        self, ledger: FollowUpLedger, since_seq: int = 0
    ) -> Iterable[PendingFollowUp]:
        """Follow-ups implied by snapshots stored after ``since_seq`` that never landed (a
        process killed between a page's commit and its sends, a broker that lost them), read
        from the ledger alone with a few queries. Recovery sends them at start-up and on every
        scheduler pass, so the answer must be empty once they landed."""
        ...

    def close(self) -> None: ...


# --- settings: one model per gateway, one instance per account


class GatewaySettings(BaseSettings):
    """A gateway's settings for one account, read from ``<GATEWAY>_<FIELD>`` (the default
    account) or ``<GATEWAY>_<ACCOUNT>_<FIELD>``; the loader passes the prefix (``_env_prefix``).

    Subclasses add their fields and say when the account's credentials are complete. Every
    ``SecretStr`` field feeds the log redaction. Pacing is common: the limiter reads it.
    """

    # env_ignore_empty: ``NAME=`` means unset, so an empty credential never switches a source on.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )
    DESCRIPTIONS: ClassVar[Mapping[str, str]] = {}  # field → one line, for deploy/settings_doc.py

    max_concurrency: int = Field(default=4, ge=1)
    requests_per_second: int = Field(default=20, ge=1)

    _prefix: str = PrivateAttr(default="")

    def set_prefix(self, prefix: str) -> None:
        """Remember the variables' prefix (``AURPAY_EU_``), for messages naming a variable."""
        self._prefix = prefix

    def variable(self, field: str) -> str:
        """The environment variable of ``field`` for this account, e.g. ``AURPAY_EU_API_KEY``."""
        return f"{self._prefix}{field}".upper()

    def inconsistency(self) -> tuple[str, str] | None:
        """(variable, why) when the settings contradict each other, whether or not the account
        syncs (e.g. half a key pair); None when they are consistent."""
        return None

    @abstractmethod
    def missing_credentials(self) -> tuple[str, str] | None:
        """(variable to set, why) when this account cannot sync; None when it can."""

    def secret_values(self) -> list[str]:
        """Every secret this account holds, for the log redaction processor."""
        return [
            value.get_secret_value()
            for value in (getattr(self, name) for name in type(self).model_fields)
            if isinstance(value, SecretStr)
        ]


S = TypeVar("S", bound=GatewaySettings)


# --- inbound: callbacks and webhooks a gateway sends to ``/callbacks/<source>``


@dataclass(frozen=True)
class InboundPolicy:
    """What the deployment decides for every gateway's callbacks."""

    max_skew_seconds: int  # a signed timestamp further off than this is refused


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to a source's callback route, as received."""

    method: str
    target: str  # path and query
    url: str  # the URL the gateway called (TALLY_PUBLIC_URL, or the Host header) + target
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    now: datetime


@dataclass(frozen=True)
class Accepted:
    """An authentic delivery naming one object to re-fetch (its body is never trusted).

    ``replay_key`` is remembered for ``replay_seconds`` once authentic; a delivery with the same
    key within that time is refused (401) when ``replays_refused``, else acknowledged as a
    duplicate (200) so the gateway stops retrying.
    """

    refetch: FollowUp
    replay_key: str
    replay_seconds: int
    replays_refused: bool


@dataclass(frozen=True)
class Refused:
    """A delivery not acted on: HTTP status, a reason for the log (names the check, never a
    value) and the error for the response body."""

    status: int
    reason: str
    error: str


Verdict = Accepted | Refused


class Verifier(Protocol):
    """A gateway's check of one account's callbacks."""

    def check(self, delivery: Delivery) -> Verdict: ...

    def warnings(self) -> list[str]:
        """Configuration problems worth a log line when the server starts (e.g. no secret)."""
        ...


# --- the description


@dataclass(frozen=True)
class Gateway(Generic[S]):
    """Everything tally knows about one gateway; ``name`` is its default source's name and the
    prefix of its variables (``AURPAY_`` for ``aurpay``)."""

    name: str
    settings: type[S]  # one account's settings
    build_source: Callable[[str, S, Limiter], Source]  # (source name, account, limiter)
    derivers: Mapping[str, Deriver]  # journal derivers by kind (``<gateway>/postings.py``)
    make_plan: PlanMaker  # the reconcile plan for a source's name (``<gateway>/plan.py``)
    verifier: Callable[[S, InboundPolicy], Verifier] | None = None  # None: no callbacks

    def load_settings(self, prefix: str, **overrides: Any) -> S:
        """One account's settings from ``<prefix><FIELD>`` variables (raises ValidationError)."""
        # ``_env_prefix`` is a BaseSettings init argument, not a field (hence the ignore).
        # pydantic-settings takes ``_env_prefix`` at run time, but its stub omits it.
        account = self.settings(_env_prefix=prefix, **overrides)  # type: ignore[call-arg]
        account.set_prefix(prefix)
        return account
