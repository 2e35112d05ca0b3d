"""Deterministic Aurpay-shaped records for the sandbox: orders, transactions, refund-infos, junk.

Pure: every value comes from the ``random.Random`` passed in and from timestamps the caller
gives (a fixed epoch plus minutes), never from the wall clock or the global random. Amounts are
``Decimal``; orders and transactions carry them as strings, refund-infos as ``Decimal`` (written
as JSON numbers), exactly like the fixtures in tests/fixtures/aurpay/.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection
from copy import deepcopy
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from ledger.precision import PrecisionTable
from sandbox.kit.faults import InvalidRecord

EPOCH = datetime(2025, 1, 1)
CHAINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BTC": ("Bitcoin", ("BTC",)),
    "ETH": ("Ethereum", ("ETH", "USDT-ERC20", "USDC-ERC20")),
    "TRX": ("Tron", ("TRX", "USDT-TRC20", "USDC-TRC20")),
}
USD_RATES = {"BTC": Decimal("61873.25"), "ETH": Decimal("3141.59"), "TRX": Decimal("0.1237")}
# Fee range in steps of 10**exponent: BTC 500-3000 sat, ETH 0.00002-0.0004, tokens 0.1-2.0.
FEE_STEPS = {"BTC": (500, 3000, -8), "ETH": (2 * 10**13, 4 * 10**14, -18)}
TOKEN_FEE_STEPS = (100, 2000, -3)
STATUS_WEIGHTS = {
    "SUCCESS": 46,
    "REFUNDED": 14,
    "OVERDUE": 12,
    "PENDING": 10,
    "RESOLVED": 10,
    "PARTIAL": 4,
    "TERMINATED": 4,
}
PAID_STATUSES = frozenset({"SUCCESS", "RESOLVED", "REFUNDED", "PARTIAL"})
REFUNDABLE_STATUSES = frozenset({"SUCCESS", "RESOLVED", "PARTIAL"})
ORDER_PLANTS = frozenset({"order", "crosscheck", "transaction"})
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_HEX = "0123456789abcdef"


def ts(moment: datetime) -> str:
    """Aurpay's naive ISO-8601 timestamp, e.g. ``2025-02-06T00:00:00``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def text(amount: Decimal) -> str:
    """An amount as the string Aurpay writes: plain digits, never an exponent."""
    return format(amount, "f")


class Generator:
    """Makes records from one seeded ``Random``; the same call sequence gives the same records."""

    def __init__(
        self,
        rng: random.Random,
        mismatch_rate: float,
        dust_rate: float,
        precision: PrecisionTable | None = None,
    ) -> None:
        self.rng = rng
        self.mismatch_rate = mismatch_rate
        self.dust_rate = dust_rate
        self.precision = precision or PrecisionTable()
        self.user_id = "mct-" + self._chars(_HEX, 12)
        self._order_ids: set[str] = set()

    # --- records

    def order(self, created: datetime) -> dict[str, Any]:
        """A new unpaid order (status PENDING), with the 26 fields of the callback example."""
        chain = self.rng.choice(sorted(CHAINS))
        chain_name, currencies = CHAINS[chain]
        currency = self.rng.choice(currencies)
        vs_price = Decimal(f"{self.rng.randrange(5, 2000)}.{self.rng.choice('0000005')}")
        fee = self._fee(currency, extra_digits=self.rng.random() < self.dust_rate)
        return {
            "user_id": self.user_id,
            "order_id": self.order_id(created),
            "order_type": "INVOICE" if self.rng.random() < 0.2 else "ORDER",
            "platform": "AURPAY",
            "status": "PENDING",
            "chain": chain,
            "chain_name": chain_name,
            "currency": currency,
            "amount": text(self._amount(currency, vs_price)),
            "vs_price": text(vs_price),
            "vs_currency": "USD",
            "remark": "",
            "refund": False,
            "bind_id": None,
            "create_time": ts(created),
            "update_time": ts(created),
            "tx_id": self.tx_id(),
            "tx_type": "ORDER",
            "obtained": None,
            "fee": text(fee),
            "from_addr": None,
            "to_addr": self._address(chain),
            "tx_hash": None,
            "tx_hash_list": [],
            "contract_id": None,
            "website": None,
        }

    def pay(
        self, order: dict[str, Any], at: datetime, plant: Collection[str] | None = None
    ) -> dict[str, Any]:
        """Mark ``order`` paid (SUCCESS) at ``at`` and return its transaction.

        ``plant`` names the inconsistencies to plant ("order": order obtained off,
        "crosscheck": transaction amount differs from the order's, "transaction": transaction
        obtained off); None rolls each at the mismatch rate.
        """
        if plant is None:  # one roll for the order (own or cross-check), one for its transaction
            rolled: set[str] = set()
            if self.rng.random() < self.mismatch_rate:
                rolled.add(self.rng.choice(("order", "crosscheck")))
            if self.rng.random() < self.mismatch_rate:
                rolled.add("transaction")
            plant = rolled
        currency = order["currency"]
        amount, fee = Decimal(order["amount"]), Decimal(order["fee"])
        # A fee finer than the chain's unit: usually obtained is cut to the chain's precision
        # (dust below one unit), sometimes written with every digit (no difference at all).
        truncate = self.rng.random() < 0.75
        obtained = self._obtained(amount, fee, currency, truncate)
        tx_amount = amount + (self._offset(currency) if "crosscheck" in plant else 0)
        tx_obtained = self._obtained(tx_amount, fee, currency, truncate)
        tx_hash = self.tx_hash(order["chain"])
        order.update(
            status="SUCCESS",
            refund=True,
            update_time=ts(at),
            obtained=text(obtained + (self._offset(currency) if "order" in plant else 0)),
            from_addr=self._address(order["chain"]),
            tx_hash=tx_hash,
            tx_hash_list=[tx_hash],
        )
        tx_obtained += self._offset(currency) if "transaction" in plant else 0
        return {
            "user_id": order["user_id"],
            "tx_id": order["tx_id"],
            "tx_type": "ORDER",
            "status": "SUCCESS",
            "chain": order["chain"],
            "currency": currency,
            "amount": text(tx_amount),
            "obtained": text(tx_obtained),
            "fee": order["fee"],
            "order_id": order["order_id"],
            "create_time": ts(at),
        }

    def refund(
        self, order: dict[str, Any], at: datetime, mismatch: bool | None = None
    ) -> dict[str, Any]:
        """Mark a paid ``order`` REFUNDED at ``at`` and return its refund-info (Decimal amounts)."""
        if mismatch is None:
            mismatch = self.rng.random() < self.mismatch_rate
        currency = order["currency"]
        unit = self.precision.unit(currency)
        amount = Decimal(order["obtained"]).quantize(unit, rounding=ROUND_DOWN)
        network_fee = self._fee(currency, extra_digits=self.rng.random() < self.dust_rate)
        obtained = self._obtained(amount, network_fee, currency, truncate=True)
        order.update(status="REFUNDED", refund=False, update_time=ts(at))
        return {
            "order_id": order["order_id"],
            "chain": order["chain"],
            "currency": currency,
            "amount": amount,
            "network_fee": network_fee,
            "obtained": obtained + (self._offset(currency) if mismatch else 0),
            "from_addr": order["to_addr"],
            "to_addr": order["from_addr"],
            # Unit unknown (docs: "the timestamp for the refund", example 60): small ints like it.
            "refund_et": self.rng.choice((30, 60, 120, 300)),
        }

    def junk_order(self, near: dict[str, Any]) -> InvalidRecord:
        """A list item that must fail validation, shaped like (and listed next to) ``near``."""
        record = deepcopy(near)
        record["order_id"] = self.order_id(datetime.fromisoformat(near["create_time"]))
        record["tx_id"] = self.tx_id()
        kind = self.rng.randrange(3)
        if kind == 0:
            record["amount"] = "abc"
            return InvalidRecord("orders", "amount is not a decimal", record)
        if kind == 1:
            del record["order_id"]
            return InvalidRecord("orders", "order_id is missing", record)
        record["create_time"] = "not-a-date"
        return InvalidRecord("orders", "create_time is not a timestamp", record)

    def junk_transaction(self, near: dict[str, Any]) -> InvalidRecord:
        record = deepcopy(near)
        record["tx_id"] = self.tx_id()
        if self.rng.random() < 0.5:
            record["amount"] = "abc"
            return InvalidRecord("transactions", "amount is not a decimal", record)
        del record["tx_id"]
        return InvalidRecord("transactions", "tx_id is missing", record)

    # --- identifiers

    def order_id(self, created: datetime) -> str:
        """``YYYYMMDDhhmmss`` + 6 digits, unique within this generator."""
        while True:
            candidate = created.strftime("%Y%m%d%H%M%S") + f"{self.rng.randrange(10**6):06d}"
            if candidate not in self._order_ids:
                self._order_ids.add(candidate)
                return candidate

    def tx_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def status(self) -> str:
        names = list(STATUS_WEIGHTS)
        return self.rng.choices(names, weights=[STATUS_WEIGHTS[n] for n in names])[0]

    # --- amounts

    def _amount(self, currency: str, vs_price: Decimal) -> Decimal:
        if currency not in USD_RATES:  # a stablecoin: the price plus a few ten-thousandths
            return vs_price + Decimal(self.rng.randrange(100)).scaleb(-4)
        unit = self.precision.unit(currency)
        if currency == "ETH" and self.rng.random() < 0.1:  # large, all 18 decimals used
            return Decimal(self.rng.randrange(1, 5000)) + Decimal(self.rng.randrange(10**18)) * unit
        with localcontext() as ctx:
            ctx.prec = 60
            return (vs_price / USD_RATES[currency]).quantize(unit, rounding=ROUND_HALF_UP)

    def _fee(self, currency: str, extra_digits: bool) -> Decimal:
        low, high, exponent = FEE_STEPS.get(currency, TOKEN_FEE_STEPS)
        fee = Decimal(self.rng.randrange(low, high)).scaleb(exponent)
        if extra_digits:  # three digits past the chain's precision, never all zero
            places = self.precision.places_for(currency)
            fee += Decimal(self.rng.randrange(1, 1000)).scaleb(-(places + 3))
        return fee

    def _obtained(self, amount: Decimal, fee: Decimal, currency: str, truncate: bool) -> Decimal:
        exact = amount - fee
        cut = exact.quantize(self.precision.unit(currency), rounding=ROUND_DOWN)
        # Only cut what the chain cannot carry; exact values keep their own digits ("7.3353").
        return cut if truncate and cut != exact else exact

    def _offset(self, currency: str) -> Decimal:
        """A planted difference: 2 to 49 smallest units, either sign."""
        units = self.rng.randrange(2, 50) * self.rng.choice((1, -1))
        return units * self.precision.unit(currency)

    # --- addresses and hashes

    def _chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def _address(self, chain: str) -> str:
        if chain == "BTC":
            return "tb1q" + self._chars(_BECH32, 38)
        if chain == "ETH":
            return "0x" + self._chars(_HEX, 40)
        return "T" + self._chars(_BASE58, 33)

    def tx_hash(self, chain: str) -> str:
        digest = self._chars(_HEX, 64)
        return "0x" + digest if chain == "ETH" else digest


def later(moment: datetime, rng: random.Random, low_minutes: int, high_minutes: int) -> datetime:
    return moment + timedelta(minutes=rng.randrange(low_minutes, high_minutes))
