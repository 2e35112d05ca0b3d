"""Settings of the accounting-system exports: GL account mappings and Xero's tax rate.

Read apart from the core settings, only by ``tally export quickbooks|xero``, so a mapping
problem never stops the worker. Each mapping is a JSON object of tally account (or ancestor) to
the target's GL account (``ledger.exports.mapping``)::

    TALLY_QUICKBOOKS_ACCOUNTS='{"assets:aurpay": "Crypto:Aurpay", "income:sales": "Sales"}'
    TALLY_XERO_ACCOUNTS='{"assets:aurpay": "1210", "income:sales": "200"}'

An unreadable mapping is one line naming its variable.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings

from ledger.exports.mapping import AccountMap
from worker.accounts import config_error
from worker.config import Settings


class ExportSettings(BaseSettings):
    """``TALLY_QUICKBOOKS_ACCOUNTS``, ``TALLY_XERO_ACCOUNTS``, ``TALLY_XERO_TAX_RATE``."""

    # read like the core settings: environment over .env, empty means unset
    model_config = Settings.model_config

    tally_quickbooks_accounts: str = "{}"
    tally_xero_accounts: str = "{}"
    # Xero wants the full name of a tax rate on every line; what "no tax" is called depends on
    # the organisation's region ("Tax Exempt", "No GST", "No VAT", "BAS Excluded").
    tally_xero_tax_rate: str = Field(default="Tax Exempt", min_length=1, max_length=100)

    @field_validator("tally_quickbooks_accounts", "tally_xero_accounts")
    @classmethod
    def _mapping(cls, value: str) -> str:
        AccountMap.parse(value)  # raises ValueError with the reason
        return value

    def quickbooks(self) -> AccountMap:
        return AccountMap.parse(self.tally_quickbooks_accounts)

    def xero(self) -> AccountMap:
        return AccountMap.parse(self.tally_xero_accounts)


def load_export_settings() -> ExportSettings:
    """The export settings, or a one-line ``ConfigError`` naming the variable."""
    try:
        return ExportSettings()
    except ValidationError as exc:
        raise config_error(exc) from None
