"""The sandbox world: deterministic, shaped like the Aurpay fixtures, and honest about its truth."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from ledger import jsonx
from ledger.precision import DEFAULT_PRECISION
from sandbox.aurpay import Conflict, SandboxConfig, UnknownOrder, World

PAID_ONLY = {"obtained", "from_addr", "tx_hash"}  # null in the (unpaid) example, str once paid


def json_type(value: Any) -> str:
    return type(jsonx.loads(jsonx.dumps(value))).__name__


@pytest.fixture(scope="module")
def world() -> World:
    return World(SandboxConfig(seed=7, orders=400, mismatch_rate=0.1, dust_rate=0.1))


def test_same_seed_same_world_and_different_seed_differs() -> None:
    config = SandboxConfig(seed=11, orders=60, rate_invalid_record=0.1)
    first, second = World(config).truth(), World(config).truth()
    assert jsonx.canonical(first) == jsonx.canonical(second)
    other = World(SandboxConfig(seed=12, orders=60, rate_invalid_record=0.1)).truth()
    assert jsonx.canonical(other) != jsonx.canonical(first)


def test_orders_have_the_fields_and_json_types_of_the_callback_example(
    world: World, aurpay_fixture: Callable[[str], Any]
) -> None:
    example = aurpay_fixture("callback-order.json")
    for order in world.truth()["orders"]:
        assert list(order) == list(example)
        paid = order["obtained"] is not None
        for name, value in example.items():
            expected = "str" if paid and name in PAID_ONLY else json_type(value)
            assert json_type(order[name]) == expected, (name, order["status"])


def test_list_items_cover_the_partial_list_example(
    world: World, aurpay_fixture: Callable[[str], Any]
) -> None:
    documented = aurpay_fixture("orders-list-response.partial.json")["data"]["data"][0]
    item = world.orders_page(1, 10)["data"][0]
    assert set(documented) <= set(item)
    assert {k: json_type(item[k]) for k in documented} == {
        k: json_type(v) for k, v in documented.items()
    }


def test_refund_info_has_the_fields_and_types_of_the_example(
    world: World, aurpay_fixture: Callable[[str], Any]
) -> None:
    example = aurpay_fixture("refund-info-response.json")["data"]
    infos = world.truth()["refund_infos"]
    assert infos
    for info in infos:
        assert list(info) == list(example)
        assert {k: json_type(v) for k, v in info.items()} == {
            k: json_type(v) for k, v in example.items()
        }
        text = jsonx.dumps(info)
        assert f'"amount":{info["amount"]}' in text  # a JSON number, every digit kept


def test_amounts_are_strings_in_orders_and_transactions(world: World) -> None:
    truth = world.truth()
    for tx in truth["transactions"]:
        assert all(isinstance(tx[k], str) for k in ("amount", "obtained", "fee"))
        assert set(tx) >= {"user_id", "tx_id", "tx_type", "status", "chain", "currency"}
    for order in truth["orders"]:
        assert isinstance(order["amount"], str) and isinstance(order["fee"], str)


def test_precision_variety(world: World) -> None:
    orders = world.truth()["orders"]
    currencies = {"BTC", "ETH", "USDT-ERC20", "USDC-ERC20", "USDT-TRC20", "USDC-TRC20", "TRX"}
    assert {o["currency"] for o in orders} == currencies
    assert {o["chain"] for o in orders} == {"BTC", "ETH", "TRX"}
    statuses = {o["status"] for o in orders}
    assert {"PENDING", "OVERDUE", "SUCCESS", "RESOLVED", "REFUNDED"} <= statuses

    def places(text: str) -> int:
        return -int(Decimal(text).as_tuple().exponent)

    assert any(places(o["fee"]) > DEFAULT_PRECISION[o["currency"]] for o in orders)
    assert any(o["currency"] == "ETH" and places(o["amount"]) == 18 for o in orders)
    for order in orders:
        assert len(order["order_id"]) == 20 and order["order_id"].isdigit()
        assert order["order_id"][:14] == re.sub(r"\D", "", order["create_time"])
        assert order["user_id"].startswith("mct-") and len(order["user_id"]) == 16


Diffs = dict[tuple[str, str], list[tuple[Decimal, Decimal]]]  # key -> [(|difference|, unit)]


def differences(truth: dict[str, Any]) -> Diffs:
    """Independent recomputation of every checked difference, with Decimal: one entry per
    cause (an order's disagreement that is its transaction's fault is the transaction's)."""
    found: Diffs = {}

    def unit_of(currency: str) -> Decimal:
        return Decimal(1).scaleb(-DEFAULT_PRECISION[currency])

    def check(key: tuple[str, str], currency: str, diff: Decimal) -> None:
        found.setdefault(key, []).append((abs(diff), unit_of(currency)))

    def net(record: dict[str, Any], fee: str = "fee") -> Decimal:
        return Decimal(record["amount"]) - Decimal(record[fee]) - Decimal(record["obtained"])

    txs = {tx["tx_id"]: tx for tx in truth["transactions"]}
    for tx in txs.values():
        check(("transaction", tx["tx_id"]), tx["currency"], net(tx))
    orders = {order["order_id"]: order for order in truth["orders"] if "order_id" in order}
    for order in orders.values():
        # Only statuses the docs say money arrived in are judged (PARTIAL is undocumented).
        if order["obtained"] is None or order["status"] not in ("SUCCESS", "RESOLVED", "REFUNDED"):
            continue
        key, currency, unit = (
            ("order", order["order_id"]),
            order["currency"],
            unit_of(order["currency"]),
        )
        check(key, currency, net(order))
        linked = txs[order["tx_id"]]
        if len(order["tx_hash_list"]) > 1:  # one transfer of several: at most the order
            over = Decimal(linked["amount"]) - Decimal(order["amount"])
            check(key, currency, max(over, Decimal(0)))
            continue
        deltas = {f: Decimal(order[f]) - Decimal(linked[f]) for f in ("amount", "fee", "obtained")}
        broken = {f for f, d in deltas.items() if abs(d) > unit}
        if broken == {"obtained"} and abs(net(order)) <= unit and abs(net(linked)) > unit:
            continue  # the transaction's cause
        for diff in deltas.values():
            check(key, currency, diff)
    for info in truth["refund_infos"]:
        key, currency = ("refund", info["order_id"]), info["currency"]
        whole = info["amount"] - info["obtained"]
        token_fee_in_coin = currency != info["chain"] and abs(whole) <= unit_of(currency)
        check(key, currency, Decimal(0) if token_fee_in_coin else net(info, "network_fee"))
        over = info["amount"] - Decimal(orders[info["order_id"]]["amount"])
        check(("refund-vs-order", info["order_id"]), currency, max(over, Decimal(0)))
    return found


def recompute(truth: dict[str, Any]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(mismatches, dust): above one unit, and strictly between zero and one unit."""
    found = differences(truth)
    mismatches = {k for k, diffs in found.items() if any(d > unit for d, unit in diffs)}
    dust = {k for k, diffs in found.items() if any(0 < d < unit for d, unit in diffs)}
    return mismatches, dust - mismatches


def test_expected_mismatches_match_a_decimal_recomputation_and_exclude_dust(world: World) -> None:
    truth = jsonx.loads(jsonx.dumps(world.truth()))  # through JSON, as a client sees it
    mismatches, dust = recompute(truth)
    assert world.expected_mismatches() == mismatches
    assert world.dust_cases() == dust
    assert {rule for rule, _ in mismatches} == {"order", "transaction", "refund"}
    cases = world.legit_cases()
    assert set(cases) == {"fee-absorbed-refund", "two-transfer-payment", "erc20-refund-fee-in-eth"}
    assert not {subject for _, subject in mismatches} & set(cases.values())
    assert {rule for rule, _ in dust} >= {"order", "transaction", "refund"}
    assert not mismatches & dust


def test_planted_mismatches_are_at_least_two_units() -> None:
    world = World(SandboxConfig(seed=3, orders=300, mismatch_rate=0.2, dust_rate=0.0))
    found = differences(world.truth())
    assert not world.dust_cases()
    assert len(world.expected_mismatches()) > 20
    for key in world.expected_mismatches():
        assert any(diff >= 2 * unit for diff, unit in found[key])
    assert all(diff == 0 or diff >= 2 * unit for diffs in found.values() for diff, unit in diffs)


def test_invalid_records_are_extra_items_and_listed() -> None:
    clean = World(SandboxConfig(seed=5, orders=80))
    junky = World(SandboxConfig(seed=5, orders=80, rate_invalid_record=0.2))
    invalid = junky.invalid_records()
    assert invalid and {r.endpoint for r in invalid} == {"orders", "transactions"}
    orders = junky.truth()["orders"]
    assert len(orders) == 80 + sum(r.endpoint == "orders" for r in invalid)
    real = [o for o in orders if o not in [r.record for r in invalid]]
    assert len(real) == 80 and len(clean.truth()["orders"]) == 80
    junk_keys = {
        ("order", r.record.get("order_id", ""))
        if r.endpoint == "orders"
        else ("transaction", r.record.get("tx_id", ""))
        for r in invalid
    }
    assert not (junky.expected_mismatches() | junky.dust_cases()) & junk_keys


def test_pages_are_newest_first_and_capped() -> None:
    world = World(SandboxConfig(seed=2, orders=45, page_size_cap=20))
    first = world.orders_page(1, 50)
    assert (first["size"], first["total"], first["max_page"]) == (20, 45, 3)
    rows = [o for p in (1, 2, 3) for o in world.orders_page(p, 20)["data"]]
    keys = [(o["create_time"], o["order_id"]) for o in rows]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 45
    assert world.orders_page(4, 20)["data"] == []
    empty = World(SandboxConfig(orders=0)).orders_page(1, 10)
    assert (empty["total"], empty["max_page"], empty["data"]) == (0, 0, [])


def test_admin_changes_move_the_truth() -> None:
    world = World(SandboxConfig(seed=9, orders=30, mismatch_rate=0.0, dust_rate=0.0))
    events: list[tuple[str, str]] = []
    world.subscribe(lambda event, order: events.append((event, order["order_id"])))
    newest_before = world.orders_page(1, 1)["data"][0]
    (new_id,) = world.add_orders(1)
    assert world.orders_page(1, 1)["data"][0]["order_id"] == new_id
    assert new_id > newest_before["order_id"]

    unpaid = next(o for o in world.truth()["orders"] if o["obtained"] is None)
    paid = world.pay(unpaid["order_id"], mismatch=True)
    assert paid["status"] == "SUCCESS" and paid["update_time"] > unpaid["update_time"]
    assert ("transaction", paid["tx_id"]) in world.expected_mismatches()
    with pytest.raises(Conflict):
        world.pay(unpaid["order_id"])

    info = world.refund(unpaid["order_id"], mismatch=False)
    assert world.order(unpaid["order_id"])["status"] == "REFUNDED"
    assert world.refund_info(unpaid["order_id"]) == info
    world.update_refund_info(unpaid["order_id"], {"obtained": info["obtained"] - Decimal(1)})
    assert ("refund", unpaid["order_id"]) in world.expected_mismatches()
    assert events == [("paid", unpaid["order_id"]), ("refunded", unpaid["order_id"])]
    with pytest.raises(UnknownOrder):
        world.order("00000000000000000000")


def test_concurrent_changes_keep_the_world_consistent() -> None:
    world = World(SandboxConfig(seed=4, orders=10))
    threads = [threading.Thread(target=world.add_orders, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    page = world.orders_page(1, 100)
    assert page["total"] == 110 and len({o["order_id"] for o in page["data"]}) == 100
