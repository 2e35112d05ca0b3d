"""Ebioro's payment lifecycle and the regression rules (ledger.reconcile.regressions): open →
processing → paid (or underpaid_accepted) → refunded (docs/gateways/ebioro.md (E-STAT-2,
E-REF-3)); underpaid, expired, canceled and failed are unpaid outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.model import Snapshot
from ledger.reconcile.regressions import (
    REFUND_AFTER_REVERSAL,
    REFUND_UNPAID,
    Lifecycle,
    refund_findings,
    status_regression,
)
from ledger.reconcile.rules import Finding
from worker.gateways.ebioro.postings import asset_units, settlement_currency, status_of


def _paid(payment: Mapping[str, Any]) -> Decimal:
    try:
        return asset_units(payment, "amount_paid") or Decimal(0)
    except ValueError:  # UnpostableSnapshot is a ValueError: a malformed amount puts nothing
        return Decimal(0)


LIFECYCLE = Lifecycle(
    stage={
        "open": 0,
        "processing": 0,
        "underpaid": 1,
        "expired": 1,
        "canceled": 1,
        "failed": 1,
        "paid": 2,
        "underpaid_accepted": 2,
        "refunded": 3,
    },
    status_of=status_of,
    currency_of=settlement_currency,
    at_stake=_paid,
)


def status_regression_rule(versions: Sequence[Snapshot]) -> list[Finding]:
    """A payment's statuses move forward only: open → paid (or underpaid_accepted) → refunded
    (docs/gateways/ebioro.md (E-STAT-2, E-REF-3)); a later version at an earlier stage
    (refunded → paid, paid → expired) is a regression. The journal keeps what was posted."""
    return status_regression(LIFECYCLE, versions)


def refund_unpaid_rule(
    payments: Sequence[Snapshot], refund: Snapshot, currency: str, amount: Decimal
) -> list[Finding]:
    """A refund requires a paid payment (docs/gateways/ebioro.md (E-REF-3)): a completed
    refund of a payment no version of which was paid is a finding."""
    return refund_findings(LIFECYCLE, payments, refund, currency, amount, only=REFUND_UNPAID)


def refund_after_reversal_rule(
    payments: Sequence[Snapshot], refund: Snapshot, currency: str, amount: Decimal
) -> list[Finding]:
    """A refund stored after its payment left ``refunded`` (docs/gateways/ebioro.md (E-STAT-2):
    statuses do not go back) is a finding."""
    return refund_findings(
        LIFECYCLE, payments, refund, currency, amount, only=REFUND_AFTER_REVERSAL
    )
