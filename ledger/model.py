"""Frozen values the ledger speaks in: raw records in, snapshots and journal entries out.

Pure data; no session, no clock. The store turns ``RawRecord`` into ``Snapshot`` rows and the
journal turns snapshots into ``JournalEntry`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64

# Bounds of the columns provider values land in (``ledger.storage.tables``, and the alert tables'
# subject ids and currencies): ids and currency codes are checked against them before they
# reach a table, since a longer value aborts the whole transaction on PostgreSQL (SQLite
# would store it).
MAX_EXTERNAL_ID = 128
MAX_CURRENCY = 80  # a Stellar CODE:ISSUER (12 + 1 + 56) fits


@dataclass(frozen=True)
class RawRecord:
    """One provider object exactly as received (payload parsed by ``ledger.jsonx.loads``)."""

    source: str  # "aurpay", "ebioro"
    kind: str  # aurpay: "order" | "transaction" | "refund"; ebioro: "payment" | "refund"
    external_id: str  # order_id for orders and refunds, tx_id for transactions
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Rejected:
    """A record that failed validation: kept with its reason and raw JSON for quarantine."""

    source: str
    kind: str
    reason: str
    raw: Any  # the parsed JSON value as received (or the raw text when it did not parse)
    external_id: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """One stored version of a provider object."""

    seq: int
    source: str
    kind: str
    external_id: str
    version: int
    observed_at: datetime
    content_hash: str
    prev_hash: str
    entry_hash: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Posting:
    """One leg of a journal entry. Positive amounts are debits, negative amounts credits.

    ``value`` is what the leg was worth in ``value_currency`` by the gateway's own quote for the
    event (signed like ``amount``); both are None when the gateway quoted no price.
    """

    account: str
    currency: str
    amount: Decimal
    value: Decimal | None = None
    value_currency: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """A balanced journal transaction derived from one snapshot.

    ``key`` is the natural idempotency key: deriving the same snapshot twice yields the same key,
    and the store refuses a second entry with it. ``date`` is the effective date (when the
    economic event happened, or the first open day when that falls in a closed period);
    ``recorded_at`` is when tally appended it; ``meta`` holds the value's provenance, flags
    such as ``no-price`` and, for a deferred entry, its ``original_date``.
    """

    key: str
    date: datetime
    description: str
    source: str
    external_id: str
    snapshot_seq: int
    postings: tuple[Posting, ...]
    reverses_key: str | None = None
    seq: int | None = None  # assigned by the store on append
    prev_hash: str | None = None
    entry_hash: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    recorded_at: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
