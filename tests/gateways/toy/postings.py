"""How toy invoices, credits and settlements post to the journal, one currency per entry.

==================== ==========================================================================
paid invoice         ``income:sales −amount``, ``expenses:gateway-fees +fee``,
                     ``assets:<source>:<CUR> +(amount − fee)``
credit               ``income:refunds +amount``, ``assets:<source>:<CUR> −amount``
settlement (payout)  ``assets:<source>:<CUR> −net``, ``assets:bank:<CUR> +net``
==================== ==========================================================================

Open and void invoices post nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ledger.journal import accounts
from ledger.journal.postings import (
    Derived,
    Deriver,
    UnpostableSnapshot,
    legs,
    read_amount,
    read_currency,
)
from ledger.model import Posting, Snapshot
from ledger.money import fmt
from ledger.precision import PrecisionTable
from ledger.timeparse import first_timestamp

BANK = "assets:bank"


def amount_of(snapshot: Snapshot, name: str) -> Decimal:
    """A required amount of the snapshot (the payloads module has validated it already)."""
    amount = read_amount(snapshot.payload, name)
    if amount is None:
        raise UnpostableSnapshot(f"{name}: missing")
    return amount


def derive_invoice(snapshot: Snapshot, precision: PrecisionTable, *_: object) -> Derived | None:
    if snapshot.payload.get("status") != "paid":
        return None
    currency = read_currency(snapshot.payload)
    amount, fee = amount_of(snapshot, "amount"), amount_of(snapshot, "fee")
    postings = legs(
        Posting(accounts.SALES, currency, -amount),
        Posting(accounts.GATEWAY_FEES, currency, fee),
        Posting(accounts.asset(snapshot.source, currency), currency, amount - fee),
    )
    date = first_timestamp(snapshot.payload, "created_at") or snapshot.observed_at
    text = f"Toy invoice {snapshot.external_id} paid: {fmt(amount)} {currency}"
    return Derived(postings, date, text)


def derive_credit(snapshot: Snapshot, precision: PrecisionTable, *_: object) -> Derived | None:
    currency = read_currency(snapshot.payload)
    amount = amount_of(snapshot, "amount")
    postings = legs(
        Posting(accounts.REFUNDS, currency, amount),
        Posting(accounts.asset(snapshot.source, currency), currency, -amount),
    )
    date = first_timestamp(snapshot.payload, "created_at") or snapshot.observed_at
    invoice = snapshot.payload.get("invoice_id")
    text = f"Toy credit {snapshot.external_id} of invoice {invoice}: {fmt(amount)} {currency}"
    return Derived(postings, date, text)


def derive_settlement(snapshot: Snapshot, precision: PrecisionTable, *_: object) -> Derived | None:
    currency = read_currency(snapshot.payload)
    net = amount_of(snapshot, "net")
    postings = legs(
        Posting(accounts.asset(snapshot.source, currency), currency, -net),
        Posting(f"{BANK}:{currency}", currency, net),
    )
    date = first_timestamp(snapshot.payload, "settled_at") or snapshot.observed_at
    text = f"Toy payout of invoice {snapshot.external_id}: {fmt(net)} {currency}"
    return Derived(postings, date, text)


DERIVERS: Mapping[str, Deriver] = {
    "invoice": derive_invoice,
    "credit": derive_credit,
    "settlement": derive_settlement,
}
