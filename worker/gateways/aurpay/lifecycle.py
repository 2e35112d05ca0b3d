"""Aurpay's order lifecycle and the regression rules (ledger.reconcile.regressions): PENDING →
SUCCESS → REFUNDED, with no way back (docs/gateways/aurpay.md (A-STAT-2, A-STAT-6)).
PARTIAL, OVERDUE and TERMINATED are unpaid outcomes; RESOLVED is paid (A-STAT-3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.journal.postings import UnpostableSnapshot, read_amount
from ledger.model import Snapshot
from ledger.precision import PrecisionTable
from ledger.reconcile.regressions import (
    REFUND_AFTER_REVERSAL,
    REFUND_UNPAID,
    Lifecycle,
    refund_findings,
    status_regression,
)
from ledger.reconcile.rules import Finding, amount_or_none, code_or_none
from ledger.reconcile.unknown import unknown_precision
from worker.gateways.aurpay.postings import status_of


def _currency(payload: Mapping[str, Any]) -> str:
    value = payload.get("currency")
    return value.strip().upper() if isinstance(value, str) and value.strip() else "?"


def _at_stake(payload: Mapping[str, Any]) -> Decimal:
    """What arrived (obtained), else the amount due."""
    for name in ("obtained", "amount"):
        try:
            value = read_amount(payload, name)
        except UnpostableSnapshot:
            continue
        if value is not None:
            return value
    return Decimal(0)


LIFECYCLE = Lifecycle(
    stage={
        "PENDING": 0,
        "OVERDUE": 1,
        "TERMINATED": 1,
        "PARTIAL": 1,
        "SUCCESS": 2,
        "RESOLVED": 2,
        "REFUNDED": 3,
    },
    status_of=status_of,
    currency_of=_currency,
    at_stake=_at_stake,
)


def status_regression_rule(versions: Sequence[Snapshot]) -> list[Finding]:
    """An order's statuses move forward only, PENDING → SUCCESS → REFUNDED
    (docs/gateways/aurpay.md (A-STAT-2, A-STAT-6)); a later version at an earlier stage
    (REFUNDED → SUCCESS, paid → unpaid) is a regression. The journal keeps what was posted."""
    return status_regression(LIFECYCLE, versions)


def refund_unpaid_rule(
    orders: Sequence[Snapshot], refund: Snapshot, currency: str, amount: Decimal
) -> list[Finding]:
    """A refund is sent for a paid order (docs/gateways/aurpay.md (A-STAT-2): "can be refunded
    once" paid); refund-info for an order no version of which was paid is a finding."""
    return refund_findings(LIFECYCLE, orders, refund, currency, amount, only=REFUND_UNPAID)


def refund_after_reversal_rule(
    orders: Sequence[Snapshot], refund: Snapshot, currency: str, amount: Decimal
) -> list[Finding]:
    """Refund-info stored after the order left REFUNDED (its refund reversed,
    docs/gateways/aurpay.md (A-STAT-6): statuses do not go back) is a finding."""
    return refund_findings(LIFECYCLE, orders, refund, currency, amount, only=REFUND_AFTER_REVERSAL)


def unknown_precision_rule(orders: Sequence[Snapshot], precision: PrecisionTable) -> list[Finding]:
    """A commodity missing from the precision table (docs/gateways/aurpay.md (A-AMT-1): amounts
    carry the chain's digits) is learned from the gateway's amounts and reported once."""
    return unknown_precision(orders, precision, _commodity, _amounts)


def _commodity(payload: Mapping[str, Any]) -> str | None:
    return code_or_none(payload, "currency")


def _amounts(payload: Mapping[str, Any]) -> tuple[Decimal | None, ...]:
    """The amounts of an order that show how many decimals its commodity carries."""
    return tuple(amount_or_none(payload, name) for name in ("amount", "fee", "obtained"))
