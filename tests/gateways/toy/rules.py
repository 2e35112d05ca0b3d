"""Toy's one reconciliation rule: the credits of an invoice add up to at most its amount."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ledger.model import Snapshot
from ledger.money import exact_arithmetic, fmt
from ledger.precision import PrecisionTable
from ledger.reconcile.rules import Finding, amount_or_none, code_or_none, report, rulebook

CREDITS_EXCEED_INVOICE = "credits-exceed-invoice"
INVOICE_RULES = (CREDITS_EXCEED_INVOICE,)


def credits_exceed_invoice(
    invoice: Snapshot, credits: Sequence[Snapshot], precision: PrecisionTable
) -> list[Finding]:
    """The credits of an invoice, in its currency, total at most the invoice's amount
    (expected = amount, actual = the credits' total)."""
    amount = amount_or_none(invoice.payload, "amount")
    currency = code_or_none(invoice.payload, "currency")
    mine = [c for c in credits if code_or_none(c.payload, "currency") == currency]
    amounts = [amount_or_none(c.payload, "amount") for c in mine]
    if amount is None or currency is None or not mine or None in amounts:
        return []
    with exact_arithmetic():
        total = sum((a for a in amounts if a is not None), Decimal(0))
    if total <= amount:
        return []
    detail = f"{len(mine)} credits total {fmt(total)} > invoice amount {fmt(amount)} {currency}"
    evidence = (invoice, *sorted(mine, key=lambda c: c.external_id))
    return report(
        CREDITS_EXCEED_INVOICE, invoice, currency, amount, total, precision, evidence, detail
    )


RULES = rulebook((CREDITS_EXCEED_INVOICE, credits_exceed_invoice))
