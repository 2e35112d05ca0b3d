"""How a person resolves an alert, and what a write-off asks the journal to post.

``corrected``: the gateway fixed the data (the correction's own entry clears the suspense);
``write-off ACCOUNT``: the difference is moved out of suspense to ACCOUNT by an adjusting entry;
``explained``: nothing to post. The resolution is stored on the alert and in its history; the
journal posts a write-off from ``WriteOff`` (the ledger's journal owns that entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger.alerts.state import CORRECTED, EXPLAINED, RESOLUTIONS, WRITE_OFF, Alert
from ledger.errors import LedgerError

MAX_ACCOUNT = 255


class BadResolution(LedgerError):
    """A resolution that names no known kind, or a write-off without an account."""


@dataclass(frozen=True)
class Resolution:
    kind: str  # corrected | write-off | explained
    account: str | None = None  # the write-off's account

    def __post_init__(self) -> None:
        if self.kind not in RESOLUTIONS:
            raise BadResolution(f"resolution must be one of {', '.join(RESOLUTIONS)}")
        if (self.kind == WRITE_OFF) != bool(self.account):
            raise BadResolution("write-off needs an account (and only write-off takes one)")
        if self.account is not None and (
            len(self.account) > MAX_ACCOUNT or any(c.isspace() for c in self.account)
        ):
            raise BadResolution("the write-off account is one word of at most 255 characters")

    @classmethod
    def parse(cls, words: list[str]) -> Resolution:
        """``["write-off", "expenses:fees"]``, ``["corrected"]``, ``["explained"]``."""
        if not words:
            return cls(EXPLAINED)
        kind, rest = words[0].strip().lower(), words[1:]
        if kind == WRITE_OFF:
            if len(rest) != 1:
                raise BadResolution("write-off takes exactly one ACCOUNT")
            return cls(kind, rest[0].strip())
        if rest:
            raise BadResolution(f"{kind} takes no account")
        return cls(kind)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.account}" if self.account else self.kind


@dataclass(frozen=True)
class WriteOff:
    """The adjusting entry a write-off asks for: move ``amount`` of ``currency`` (the alert's
    difference, expected − actual) out of the alert's suspense into ``account``."""

    alert_id: int
    source: str
    subject_id: str
    rule: str
    currency: str
    amount: Decimal
    account: str
    suspense_journal_key: str | None
    note: str


def write_off(alert: Alert, account: str, note: str) -> WriteOff | None:
    """What writing ``alert`` off to ``account`` posts; None when it holds no amount."""
    if not alert.currency or alert.difference == 0:
        return None
    return WriteOff(
        alert.id,
        alert.source,
        alert.subject_id,
        alert.rule,
        alert.currency,
        alert.difference,
        account,
        alert.suspense_journal_key,
        note,
    )


__all__ = ["CORRECTED", "EXPLAINED", "WRITE_OFF", "BadResolution", "Resolution", "WriteOff"]
