"""The chart of accounts every journal entry posts to, and the sign convention.

Sign convention: a posting's amount is positive for a debit and negative for a credit, and the
postings of one entry sum to zero per currency. Every posting carries its currency, so the
income and expense accounts are multi-currency (``income:sales`` holds BTC and USDT-TRC20 side
by side); the balance-sheet accounts of a gateway name their source. docs/accounting.md has the
chart with one worked example per event, each of them a test.

=============================== ========= ====================================================
account                         type      what it holds
=============================== ========= ====================================================
assets:<source>:<CUR>           asset     the merchant's balance at the gateway, at the
                                          chain's precision (debit = money in)
liabilities:<source>:deposits   liability money received but not (yet) earned: a partial
                                          payment until its order settles, an overpayment
                                          owed back to the customer (credit)
income:sales                    income    gross amount of settled sales (credit)
income:refunds                  income    contra-revenue: what refunded customers got (debit)
expenses:gateway-fees           expense   the gateway's fee on a sale (debit)
expenses:network-fees           expense   the chain fee paid to send a refund (debit)
expenses:accepted-underpayments expense   a shortfall the merchant accepted (RESOLVED,
                                          underpaid_accepted)
expenses:rounding               expense   sub-unit residue: digits finer than the chain
                                          holds, and differences within tolerance
income:fx                       income    value residue between a fiat charge and its crypto
                                          settlement (gain credit, loss debit)
equity:conversions              equity    trading account joining a fiat price and the crypto
                                          due for it; closes to zero in value
assets:suspense:<source>:<kind>: asset     a clearing account: differences beyond tolerance,
<id>                                      one sub-account per gateway object, waiting to be
                                          corrected, written off or explained
=============================== ========= ====================================================

``assets:suspense`` therefore holds exactly the unreconciled amounts, object by object (so they
never net out): each non-zero balance is matched by an alert, and dust never reaches it.
"""

from __future__ import annotations

from decimal import Decimal

from ledger.precision import PrecisionTable

SALES = "income:sales"
REFUNDS = "income:refunds"
GATEWAY_FEES = "expenses:gateway-fees"
NETWORK_FEES = "expenses:network-fees"
ROUNDING = "expenses:rounding"
SUSPENSE = "assets:suspense"  # a clearing account: each object's differences apart
ACCEPTED_UNDERPAYMENTS = "expenses:accepted-underpayments"
CONVERSIONS = "equity:conversions"
FX = "income:fx"

FIXED_ACCOUNTS: tuple[str, ...] = (
    SALES,
    REFUNDS,
    GATEWAY_FEES,
    NETWORK_FEES,
    ACCEPTED_UNDERPAYMENTS,
    ROUNDING,
    FX,
    CONVERSIONS,
    SUSPENSE,
)


def asset(source: str, currency: str) -> str:
    """The account holding the merchant's ``currency`` balance at gateway ``source``."""
    return f"assets:{source.lower()}:{currency.upper()}"


def deposits(source: str) -> str:
    """Money received through ``source`` and owed to customers until earned (a liability)."""
    return f"liabilities:{source.lower()}:deposits"


def suspense(source: str, kind: str, external_id: str) -> str:
    """The suspense sub-account of one gateway object: its differences never net out against
    another object's, and its alert clears exactly this balance."""
    return f"{SUSPENSE}:{source.lower()}:{kind}:{external_id}"


def is_suspense(account: str) -> bool:
    return account == SUSPENSE or account.startswith(SUSPENSE + ":")


def residual_account(
    precision: PrecisionTable,
    currency: str,
    difference: Decimal,
    unit: Decimal | None = None,
    suspense_account: str = SUSPENSE,
) -> str:
    """Where an unexplained difference goes: suspense beyond tolerance, rounding within it.
    ``unit`` is the tolerance for a currency the table does not know (learned from amounts)."""
    if unit is not None and not precision.knows(currency):
        override = precision.tolerance_overrides.get(currency.upper())
        beyond = abs(difference) > (override if override is not None else unit)
        return suspense_account if beyond else ROUNDING
    return suspense_account if precision.exceeds(currency, difference) else ROUNDING
