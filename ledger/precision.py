"""The one per-currency precision table (decimal places on chain) and the tolerance it implies.

Used by the journal (what counts as dust) and by reconciliation (what counts as a mismatch).
Extendable and overridable by settings; unknown currencies fall back to 18 places, the finest
precision any supported chain uses, so an unknown token can never hide a real difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

DEFAULT_PRECISION: Mapping[str, int] = {
    "BTC": 8,
    "ETH": 18,
    "TRX": 6,
    "BNB": 18,
    "USDT-ERC20": 6,
    "USDC-ERC20": 6,
    "USDT-TRC20": 6,
    "USDC-TRC20": 6,
    "DAI-ERC20": 18,
    "USDC": 7,  # Stellar assets carry 7 decimal places
    "XLM": 7,
    # Fiat prices (Ebioro's amount.value), posted in whole units with their ISO 4217 places.
    "USD": 2,
    "EUR": 2,
    "CAD": 2,
    "GBP": 2,
}
FALLBACK_PRECISION = 18

# ISO 4217 minor units of the fiat currencies a gateway quotes in minor units (Ebioro: USD,
# EUR, CAD, GBP). A fact about the currency, so not overridable: 1000 USD minor units is
# always 10.00 USD, whatever tolerance a setting picks. A code not listed cannot be converted.
FIAT_MINOR_UNITS: Mapping[str, int] = {"USD": 2, "EUR": 2, "CAD": 2, "GBP": 2}


@dataclass(frozen=True)
class PrecisionTable:
    """Decimal places per currency, plus optional per-currency tolerance overrides."""

    places: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PRECISION))
    tolerance_overrides: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def with_overrides(
        cls,
        places: Mapping[str, int] | None = None,
        tolerances: Mapping[str, Decimal] | None = None,
    ) -> PrecisionTable:
        merged = dict(DEFAULT_PRECISION)
        merged.update({k.upper(): v for k, v in (places or {}).items()})
        return cls(merged, {k.upper(): v for k, v in (tolerances or {}).items()})

    def knows(self, currency: str) -> bool:
        """True when the currency's places are configured (not the 18-place fallback)."""
        return currency.upper() in self.places

    def places_for(self, currency: str) -> int:
        return self.places.get(currency.upper(), FALLBACK_PRECISION)

    def unit(self, currency: str) -> Decimal:
        """The smallest unit of the currency, e.g. 0.00000001 for BTC."""
        return Decimal(1).scaleb(-self.places_for(currency))

    def tolerance(self, currency: str) -> Decimal:
        """A difference counts only when its absolute value exceeds this (default: one unit)."""
        override = self.tolerance_overrides.get(currency.upper())
        return override if override is not None else self.unit(currency)

    def exceeds(self, currency: str, difference: Decimal) -> bool:
        return abs(difference) > self.tolerance(currency)
