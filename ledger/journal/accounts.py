"""The chart of accounts every journal entry posts to, and the sign convention.

Sign convention: a posting's amount is positive for a debit and negative for a credit, and the
postings of one entry sum to zero per currency. Every posting carries its currency, so the
income and expense accounts are multi-currency (``income:sales`` holds BTC and USDT-TRC20 side
by side); only the asset accounts name their currency, one account per gateway balance.

======================== ======== =========================================================
account                  type     what it holds
======================== ======== =========================================================
assets:<source>:<CUR>    asset    the merchant's balance at the gateway, e.g.
                                  ``assets:aurpay:BTC`` (debit = money in)
income:sales             income   gross amount of paid orders (credit)
income:refunds           income   contra-income: what refunded customers obtained (debit)
expenses:gateway-fees    expense  the gateway's fee on a paid order (debit)
expenses:network-fees    expense  the chain fee paid to send a refund (debit)
expenses:rounding        expense  sub-unit dust: amount − fee − obtained within tolerance
equity:suspense          equity   differences beyond tolerance, waiting to be explained
======================== ======== =========================================================

``equity:suspense`` therefore holds exactly the unreconciled amounts: each non-zero balance is
matched by a reconciliation finding, and dust never reaches it.
"""

from __future__ import annotations

from decimal import Decimal

from ledger.precision import PrecisionTable

SALES = "income:sales"
REFUNDS = "income:refunds"
GATEWAY_FEES = "expenses:gateway-fees"
NETWORK_FEES = "expenses:network-fees"
ROUNDING = "expenses:rounding"
SUSPENSE = "equity:suspense"

FIXED_ACCOUNTS: tuple[str, ...] = (SALES, REFUNDS, GATEWAY_FEES, NETWORK_FEES, ROUNDING, SUSPENSE)


def asset(source: str, currency: str) -> str:
    """The account holding the merchant's ``currency`` balance at gateway ``source``."""
    return f"assets:{source.lower()}:{currency.upper()}"


def residual_account(precision: PrecisionTable, currency: str, difference: Decimal) -> str:
    """Where an unexplained difference goes: suspense beyond tolerance, rounding within it."""
    return SUSPENSE if precision.exceeds(currency, difference) else ROUNDING
