"""Legitimate cases a reconciler must not alert on, planted into a generated Aurpay world.

Each turns one clean generated order (nothing planted, no dust) into a case that once raised a
false alert: a merchant refunding the full price and absorbing the gateway's fee, an order paid
in two on-chain transfers, and an ERC-20 refund whose network fee was paid (and reported) in
ETH. Drawn from their own ``Random`` after the world is generated, so the rest of the world is
the same with or without them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ledger.precision import PrecisionTable
from sandbox.aurpay.generate import Generator, text, ts

FEE_ABSORBED = "fee-absorbed-refund"
TWO_TRANSFERS = "two-transfer-payment"
FEE_IN_ETH = "erc20-refund-fee-in-eth"
CASES = (FEE_ABSORBED, TWO_TRANSFERS, FEE_IN_ETH)
ETH_TOKENS = frozenset({"USDT-ERC20", "USDC-ERC20"})

Record = dict[str, Any]


def _clean(record: Record, fee_field: str, unit: Decimal) -> bool:
    """``amount − fee = obtained`` exactly, at the chain's precision (no dust, no plant)."""
    amount, fee, obtained = (Decimal(str(record[k])) for k in ("amount", fee_field, "obtained"))
    return amount - fee == obtained and fee == fee.quantize(unit)


def plant_cases(
    seed: int,
    orders: dict[str, Record],
    txs: dict[str, Record],
    refunds: dict[str, Record],
    gen: Generator,
    add_tx: Callable[[Record], None],
) -> dict[str, str]:
    """Turn clean orders into the legitimate cases; case name → order id (those it found)."""
    rng = random.Random(f"{seed}:legit-cases")
    precision = gen.precision
    planted: dict[str, str] = {}

    def candidates(status: str, currencies: frozenset[str] | None = None) -> list[Record]:
        found = []
        for order in orders.values():
            tx = txs.get(order["tx_id"])
            unit = precision.unit(order["currency"])
            if order["status"] != status or order["order_id"] in planted.values() or tx is None:
                continue
            if currencies is not None and order["currency"] not in currencies:
                continue
            if _clean(order, "fee", unit) and _clean(tx, "fee", unit) and _agrees(order, tx):
                found.append(order)
        return sorted(found, key=lambda o: o["order_id"])

    refunded = [
        o
        for o in candidates("REFUNDED")
        if _clean(refunds[o["order_id"]], "network_fee", precision.unit(o["currency"]))
    ]
    if refunded:
        order = rng.choice(refunded)
        _absorb_fee(order, refunds[order["order_id"]], precision)
        planted[FEE_ABSORBED] = order["order_id"]
    paid = candidates("SUCCESS")
    if paid:
        order = rng.choice(paid)
        _two_transfers(order, txs[order["tx_id"]], rng, gen, add_tx)
        planted[TWO_TRANSFERS] = order["order_id"]
    tokens = candidates("REFUNDED", ETH_TOKENS)
    if tokens:
        order = rng.choice(tokens)
        _fee_in_eth(refunds[order["order_id"]], rng)
        planted[FEE_IN_ETH] = order["order_id"]
    return planted


def _agrees(order: Record, tx: Record) -> bool:
    return all(str(order[k]) == str(tx[k]) for k in ("amount", "fee", "obtained"))


def _absorb_fee(order: Record, info: Record, precision: PrecisionTable) -> None:
    """The merchant refunds the whole price (``amount``), not what it kept after the fee."""
    amount = Decimal(order["amount"]).quantize(precision.unit(order["currency"]), ROUND_DOWN)
    info.update(amount=amount, obtained=amount - info["network_fee"])


def _two_transfers(
    order: Record, tx: Record, rng: random.Random, gen: Generator, add_tx: Callable[[Record], None]
) -> None:
    """The customer paid in two transfers: the order's transaction carries the first (and the
    fee), a second transaction the rest; the order lists both hashes."""
    amount, fee = Decimal(order["amount"]), Decimal(order["fee"])
    unit = gen.precision.unit(order["currency"])
    first = (amount * Decimal(rng.randrange(30, 71)) / 100).quantize(unit, ROUND_DOWN)
    first = max(first, fee + unit)
    rest = amount - first
    second_hash = gen.tx_hash(order["chain"])
    tx.update(amount=text(first), obtained=text(first - fee))
    order["tx_hash_list"] = [order["tx_hash"], second_hash]
    paid_at = datetime.fromisoformat(tx["create_time"]) + timedelta(minutes=rng.randrange(1, 30))
    add_tx(
        {
            **tx,
            "tx_id": gen.tx_id(),
            "amount": text(rest),
            "obtained": text(rest),
            "fee": "0",
            "create_time": ts(paid_at),
        }
    )


def _fee_in_eth(info: Record, rng: random.Random) -> None:
    """Gas for a token refund is paid in ETH: the token amount arrives whole."""
    info.update(
        network_fee=Decimal(rng.randrange(2 * 10**13, 4 * 10**14)).scaleb(-18),
        obtained=info["amount"],
    )
