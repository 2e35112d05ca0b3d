"""What a correct reconciler must find in the sandbox's data, recomputed exactly with ``Decimal``.

Rules (subject in brackets), each a difference compared with the currency's smallest unit:

- ``refund`` (order_id): refund-info ``amount − network_fee − obtained``;
- ``transaction`` (tx_id): ``amount − fee − obtained`` of a transaction;
- ``order`` (order_id): ``amount − fee − obtained`` of a paid order (SUCCESS, RESOLVED, REFUNDED:
  the statuses the docs say money arrived in; PARTIAL's meaning is undocumented, so neither the
  sandbox nor the rules judge it), and the order's ``amount``, ``fee`` and ``obtained`` against
  its linked transaction's (same ``tx_id``): a transaction whose ``obtained`` is planted wrong
  also makes its order disagree with it, and both are reported.

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
) -> Iterator[Difference]:
    """Every checked difference; orders without ``obtained`` (unpaid) are not checked."""
    tx_by_id = {tx["tx_id"]: tx for tx in transactions}
    for tx in tx_by_id.values():
        yield ("transaction", tx["tx_id"]), tx["currency"], _net(tx, "fee")
    for order in orders:
        if order.get("obtained") is None or order.get("status") not in JUDGED_ORDER_STATUSES:
            continue
        key = ("order", order["order_id"])
        yield key, order["currency"], _net(order, "fee")
        linked = tx_by_id.get(order["tx_id"])
        if linked is not None:
            for field in ("amount", "fee", "obtained"):
                if order.get(field) is not None and linked.get(field) is not None:
                    delta = to_decimal(order[field]) - to_decimal(linked[field])
                    yield key, order["currency"], delta
    for info in refund_infos:
        yield ("refund", info["order_id"]), info["currency"], _net(info, "network_fee")


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
