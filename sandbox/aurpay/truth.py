"""What a correct reconciler must find in the sandbox's data, recomputed exactly with ``Decimal``.

The planted set is one (rule, subject) per cause, so open alerts equal it one to one. Rules
(subject in brackets), each a difference compared with the currency's smallest unit:

- ``transaction`` (tx_id): ``amount − fee − obtained`` of a transaction;
- ``order`` (order_id): ``amount − fee − obtained`` of a paid order (SUCCESS, RESOLVED, REFUNDED:
  the statuses the docs say money arrived in; PARTIAL's meaning is undocumented, so neither the
  sandbox nor the rules judge it), and the order's ``amount``, ``fee`` and ``obtained`` against
  its linked transaction's (same ``tx_id``). One cause, one entry: an order that agrees with
  itself and differs from its transaction on ``obtained`` alone while the transaction's own
  equation breaks is the transaction's problem (only ``transaction`` is planted). An order paid
  in several on-chain transfers (several ``tx_hash_list`` hashes) is only checked for a
  transfer larger than the order;
- ``refund`` (order_id): refund-info ``amount − network_fee − obtained``; a token refund whose
  fee was paid in the chain's coin (obtained = amount) holds;
- ``refund-vs-order`` (order_id): the refund's chain and currency are the order's and it
  refunds at most the order's amount (a full-price refund with the fee absorbed is fine).

A difference above one unit is a mismatch; one strictly between zero and one unit is dust (e.g.
a fee with more digits than the chain carries) and must not be reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from ledger.money import to_decimal
from ledger.precision import PrecisionTable

Key = tuple[str, str]
JUDGED_ORDER_STATUSES = frozenset({"SUCCESS", "RESOLVED", "REFUNDED"})
Difference = tuple[Key, str, Decimal]  # (rule, subject), currency, difference


def differences(
    orders: Iterable[Mapping[str, Any]],
    transactions: Iterable[Mapping[str, Any]],
    refund_infos: Iterable[Mapping[str, Any]],
    precision: PrecisionTable | None = None,
) -> Iterator[Difference]:
    """Every checked difference, with a transaction's fault on an order left to the transaction;
    orders without ``obtained`` (unpaid) are not checked."""
    table = precision or PrecisionTable()
    tx_by_id = {tx["tx_id"]: tx for tx in transactions}
    for tx in tx_by_id.values():
        yield ("transaction", tx["tx_id"]), tx["currency"], _net(tx, "fee")
    by_id: dict[str, Mapping[str, Any]] = {}
    for order in orders:
        by_id[order["order_id"]] = order
        if order.get("obtained") is None or order.get("status") not in JUDGED_ORDER_STATUSES:
            continue
        yield from _order(order, tx_by_id.get(order["tx_id"]), table)
    for info in refund_infos:
        yield ("refund", info["order_id"]), info["currency"], _refund_net(info, table)
        refunded = by_id.get(info["order_id"])
        if refunded is not None:
            yield ("refund-vs-order", info["order_id"]), info["currency"], _over(info, refunded)


def _order(
    order: Mapping[str, Any], tx: Mapping[str, Any] | None, table: PrecisionTable
) -> Iterator[Difference]:
    key, currency = ("order", order["order_id"]), order["currency"]
    own = _net(order, "fee")
    yield key, currency, own
    if tx is None:
        return
    if len(set(order.get("tx_hash_list") or [])) > 1:  # one transfer of several
        yield key, currency, max(to_decimal(tx["amount"]) - to_decimal(order["amount"]), Decimal(0))
        return
    deltas = {
        field: to_decimal(order[field]) - to_decimal(tx[field])
        for field in ("amount", "fee", "obtained")
        if order.get(field) is not None and tx.get(field) is not None
    }
    broken = {f for f, delta in deltas.items() if table.exceeds(currency, delta)}
    tx_broken = table.exceeds(currency, _net(tx, "fee"))
    if broken == {"obtained"} and not table.exceeds(currency, own) and tx_broken:
        deltas.pop("obtained")  # the transaction's cause, planted as ``transaction``
    for delta in deltas.values():
        yield key, currency, delta


def _refund_net(info: Mapping[str, Any], table: PrecisionTable) -> Decimal:
    net = _net(info, "network_fee")
    whole = to_decimal(info["amount"]) - to_decimal(info["obtained"])
    token = info.get("currency") != info.get("chain")
    return Decimal(0) if token and not table.exceeds(info["currency"], whole) else net


def _over(info: Mapping[str, Any], order: Mapping[str, Any]) -> Decimal:
    """How far the refund exceeds the order's amount (0 when within it); a chain or currency
    that differs counts as a whole-amount difference."""
    if info.get("chain") != order.get("chain") or info.get("currency") != order.get("currency"):
        return to_decimal(info["amount"])
    return max(to_decimal(info["amount"]) - to_decimal(order["amount"]), Decimal(0))


def expected_mismatches(
    found: Iterable[Difference], precision: PrecisionTable | None = None
) -> set[Key]:
    table = precision or PrecisionTable()
    return {key for key, currency, diff in found if table.exceeds(currency, diff)}


def dust_cases(found: Iterable[Difference], precision: PrecisionTable | None = None) -> set[Key]:
    table = precision or PrecisionTable()
    found = list(found)
    dust = {key for key, cur, diff in found if 0 < abs(diff) < table.unit(cur)}
    return dust - expected_mismatches(found, table)


def _net(record: Mapping[str, Any], fee_field: str) -> Decimal:
    amount, fee, obtained = (record[name] for name in ("amount", fee_field, "obtained"))
    return to_decimal(amount) - to_decimal(fee) - to_decimal(obtained)
