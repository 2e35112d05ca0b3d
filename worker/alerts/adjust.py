"""Adjusting entries from the people on call: ``tally adjust`` (any balanced entry, with a
reason and an author) and an alert resolved as ``write-off ACCOUNT`` (its suspense sub-account
zeroed into ACCOUNT). Both are ``ledger.journal.adjustments`` records appended to the chain."""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from ledger.alerts.state import Alert
from ledger.journal.accounts import is_suspense
from ledger.journal.adjustments import adjustment_record
from ledger.journal.postings import UnpostableSnapshot
from ledger.storage.store import LedgerStore
from worker.errors import TallyError


def current_author() -> str:
    """Who is at the keyboard, for an adjusting entry's record."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


def post_adjustment(
    store: LedgerStore,
    postings: Sequence[tuple[str, str, Decimal]],
    *,
    reason: str,
    author: str,
    on: date,
    now: datetime,
    adjustment_id: str | None = None,
    alert_id: int | None = None,
) -> str:
    """Append one adjusting entry; return its id. A bad entry is one line, nothing appended."""
    adjustment_id = adjustment_id or f"adj-{uuid.uuid4().hex[:12]}"
    try:
        record = adjustment_record(
            adjustment_id, postings, reason=reason, author=author, on=on, alert_id=alert_id
        )
    except UnpostableSnapshot as exc:
        raise TallyError(f"adjustment refused: {exc.reason}") from None
    store.append([record], observed_at=now)
    return adjustment_id


def write_off(
    store: LedgerStore, alert: Alert, account: str, note: str, author: str, now: datetime
) -> str | None:
    """Zero ``alert``'s suspense sub-account into ``account``; None when it holds nothing
    (a cross-check alert has no amount in suspense). One write-off per alert: the id is the
    alert's, so resolving it twice appends nothing new."""
    if not alert.suspense_journal_key:
        return None
    entry = store.entry(alert.suspense_journal_key)
    if entry is None:
        return None
    suspense = next(
        (
            p.account
            for p in entry.postings
            if is_suspense(p.account) and p.currency == alert.currency
        ),
        None,
    )
    if suspense is None:
        return None
    balance = store.account_balance(suspense, alert.currency)
    if balance == 0:
        return None
    legs = [(suspense, alert.currency, -balance), (account, alert.currency, balance)]
    reason = f"write-off of alert {alert.id} ({alert.rule} {alert.subject_id}): {note}"
    return post_adjustment(
        store,
        legs,
        reason=reason,
        author=author,
        on=now.date(),
        now=now,
        adjustment_id=f"write-off-{alert.id}",
        alert_id=alert.id,
    )
