"""The sandbox's world: Aurpay data generated from a seed, plus the changes made while it runs.

Pure and thread-safe: no I/O and no wall clock (a logical clock moves one minute per change),
one lock guards all state and readers get copies. Listeners (the callback sender) hear about
paid and refunded orders after the lock is released. The admin API calls these same methods.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from ledger.money import InvalidAmount, to_decimal
from sandbox.aurpay import truth
from sandbox.aurpay.cases import plant_cases
from sandbox.aurpay.generate import (
    EPOCH,
    ORDER_PLANTS,
    PAID_STATUSES,
    REFUNDABLE_STATUSES,
    Generator,
    later,
    ts,
)
from sandbox.aurpay.model import (
    CallbackTarget,
    Delivery,
    SandboxConfig,
)
from sandbox.aurpay.truth import Difference  # by name: World.truth() hides the module
from sandbox.kit.errors import Conflict, NotFound, SandboxError
from sandbox.kit.faults import InvalidRecord
from sandbox.kit.http import is_http_url
from sandbox.kit.world import WorldBase

Row = tuple[tuple[Any, ...], dict[str, Any]]  # (sort key, record)
REFUND_MONEY_FIELDS = ("amount", "network_fee", "obtained")
REFUND_TEXT_FIELDS = ("chain", "currency", "from_addr", "to_addr")


class UnknownOrder(NotFound):
    """No such order, or (for refund-info) an order without a refund."""


class World(WorldBase[Delivery]):
    """All orders, transactions and refund-infos of one sandbox, and what it planted in them."""

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config.fault_rates())
        self.config = config
        self._rng = random.Random(config.seed)
        self._gen = Generator(self._rng, config.mismatch_rate, config.dust_rate)
        self._orders: dict[str, dict[str, Any]] = {}
        self._txs: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._listed: dict[str, list[Row]] = {"orders": [], "transactions": []}
        self._invalid: list[InvalidRecord] = []
        self._raw: list[Any] = []  # list items added verbatim through the admin API
        self._sorted: dict[str, list[dict[str, Any]]] = {}
        self._callback: CallbackTarget | None = None
        self._clock = EPOCH
        previous: datetime | None = None
        for i in range(config.orders):
            created = EPOCH + timedelta(minutes=i, seconds=self._rng.randrange(60))
            if previous is not None and self._rng.random() < 0.03:
                created = previous  # same second: newest-first order falls back to order_id
            self._create(created)
            previous = created
        # Legitimate cases that must not alert (truth()["legit_cases"]), from their own Random.
        self._cases = plant_cases(
            config.seed, self._orders, self._txs, self._refunds, self._gen, self._list_tx
        )

    # --- the four API reads

    def orders_page(self, page: int, size: int) -> dict[str, Any]:
        return self._page("orders", page, size)

    def transactions_page(self, page: int, size: int) -> dict[str, Any]:
        return self._page("transactions", page, size)

    def order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            return deepcopy(self._order(order_id))

    def refund_info(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            self._order(order_id)
            if order_id not in self._refunds:
                raise UnknownOrder("order has no refund")
            return deepcopy(self._refunds[order_id])

    # --- the truth, for tests, the demo and benchmarks

    def truth(self) -> dict[str, Any]:
        """Everything, JSON-ready (refund-info amounts stay ``Decimal``)."""
        with self._lock:
            return {
                "orders": deepcopy(self._rows("orders")),
                "transactions": deepcopy(self._rows("transactions")),
                "refund_infos": deepcopy(list(self._refunds.values())),
                "expected_mismatches": sorted(self.expected_mismatches()),
                "dust_cases": sorted(self.dust_cases()),
                "legit_cases": dict(self._cases),
                "invalid_records": [asdict(r) for r in self._invalid],
                "raw_orders": deepcopy(self._raw),
                "deliveries": [asdict(d) for d in self._deliveries.items()],
                "faults": self._faults.as_json(),
                "callbacks": asdict(self._callback) if self._callback else None,
            }

    def expected_mismatches(self) -> set[tuple[str, str]]:
        """(rule, subject_id) pairs a correct reconciler reports now; see ``truth``."""
        with self._lock:
            return truth.expected_mismatches(self._differences())

    def dust_cases(self) -> set[tuple[str, str]]:
        """(rule, subject_id) pairs off by less than one unit: must NOT be reported."""
        with self._lock:
            return truth.dust_cases(self._differences())

    def held_by_grace(self) -> set[tuple[str, str]]:
        """Planted pairs a fresh sync finds only after the refund grace: none (the sandbox
        plants no refunded order without refund-info)."""
        return set()

    def legit_cases(self) -> dict[str, str]:
        """Legitimate cases planted to catch false alerts: case name → order id."""
        with self._lock:
            return dict(self._cases)

    def invalid_records(self) -> list[InvalidRecord]:
        with self._lock:
            return deepcopy(self._invalid)

    def raw_orders(self) -> list[Any]:
        with self._lock:
            return deepcopy(self._raw)

    # --- changes (the admin API)

    def add_orders(self, count: int) -> list[str]:
        """Add ``count`` orders newer than any existing one (random status mix); their ids."""
        if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= 10_000:
            raise SandboxError("count must be an integer between 1 and 10000")
        with self._lock:
            return [self._create(self._tick()) for _ in range(count)]

    def add_raw_order(self, item: Any) -> None:
        """List ``item`` in the orders feed exactly as given, whatever it holds (a hostile
        record for a test): at its ``create_time`` when that is a string, else as the newest.
        It is no order of the world: it never changes, is never paid and is in no truth but
        the listing (``truth()["orders"]``) and ``raw_orders``."""
        with self._lock:
            fields = item if isinstance(item, dict) else {}
            when, order_id = fields.get("create_time"), fields.get("order_id")
            key = (
                when if isinstance(when, str) else ts(self._tick()),
                order_id if isinstance(order_id, str) else "",
                len(self._raw) + 1,
            )
            self._add_row("orders", key, deepcopy(item))
            self._raw.append(deepcopy(item))

    def pay(self, order_id: str, mismatch: bool | str = False) -> dict[str, Any]:
        """Pay an unpaid order (status SUCCESS, transaction appears); ``mismatch``: True (=
        "transaction"), "order" or "crosscheck" plants that inconsistency."""
        plant = {"transaction"} if mismatch is True else {mismatch} if mismatch else set()
        if not plant <= ORDER_PLANTS:
            raise SandboxError(f"mismatch must be a boolean or one of {sorted(ORDER_PLANTS)}")
        with self._lock:
            order = self._order(order_id)
            if order["status"] in PAID_STATUSES:
                raise Conflict(f"order is already paid (status {order['status']})")
            self._add_tx(self._gen.pay(order, self._tick(), plant))
            paid = deepcopy(order)
        self._listeners.notify("paid", paid)
        return paid

    def refund(self, order_id: str, mismatch: bool = False) -> dict[str, Any]:
        """Refund a paid order: status REFUNDED, update_time moves, refund-info appears."""
        with self._lock:
            order = self._order(order_id)
            if order["status"] not in REFUNDABLE_STATUSES:
                raise Conflict(f"order is {order['status']}; only paid orders can be refunded")
            info = self._gen.refund(order, self._tick(), bool(mismatch))
            self._refunds[order_id] = info
            refunded, info = deepcopy(order), deepcopy(info)
        self._listeners.notify("refunded", refunded)
        return info

    def update_refund_info(self, order_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change refund-info fields in place (the provider correcting a refund silently)."""
        with self._lock:
            info = self._refunds.get(order_id)
            if info is None:
                raise UnknownOrder("order has no refund")
            updated = dict(info)
            for name, value in changes.items():
                updated[name] = _refund_field(name, value)
            self._refunds[order_id] = updated
            return deepcopy(updated)

    def set_callbacks(self, url: str | None, method: str = "GET") -> CallbackTarget | None:
        """Call ``url`` back on every paid/refunded order (None: stop calling back)."""
        if url is not None:
            if not is_http_url(str(url)):
                raise SandboxError("url must be an http(s) URL")
            if str(method).upper() not in ("GET", "POST"):
                raise SandboxError("method must be GET or POST")
        with self._lock:
            self._callback = CallbackTarget(url, str(method).upper()) if url else None
            return self._callback

    def callback_target(self) -> CallbackTarget | None:
        with self._lock:
            return self._callback

    # --- internals (callers hold the lock)

    def _create(self, created: datetime) -> str:
        status = self._gen.status()
        order = self._gen.order(created)
        self._orders[order["order_id"]] = order
        self._add_row("orders", (order["create_time"], order["order_id"], 0), order)
        if status in PAID_STATUSES:
            paid_at = later(created, self._rng, 1, 20)
            tx = self._gen.pay(order, paid_at)
            self._add_tx(tx)
            if status == "REFUNDED":
                refunded_at = later(paid_at, self._rng, 60, 48 * 60)
                self._refunds[order["order_id"]] = self._gen.refund(order, refunded_at)
                self._clock = max(self._clock, refunded_at)
            else:
                order["status"] = status
            self._clock = max(self._clock, paid_at)
        elif status != "PENDING":  # OVERDUE / TERMINATED: closed after the 30-minute window
            order.update(status=status, update_time=ts(created + timedelta(minutes=30)))
        self._clock = max(self._clock, created + timedelta(minutes=30))
        if self._rng.random() < self._faults.rate_invalid_record:
            self._add_junk(order, self._gen.junk_order(order))
        return str(order["order_id"])

    def _add_tx(self, tx: dict[str, Any]) -> None:
        self._list_tx(tx)
        if self._rng.random() < self._faults.rate_invalid_record:
            self._add_junk(tx, self._gen.junk_transaction(tx))

    def _list_tx(self, tx: dict[str, Any]) -> None:
        self._txs[tx["tx_id"]] = tx
        self._add_row("transactions", (tx["create_time"], tx["tx_id"], 0), tx)

    def _add_junk(self, near: dict[str, Any], junk: InvalidRecord) -> None:
        # Listed right next to the record it imitates: an extra item, never a replacement.
        subject = near.get("order_id") if junk.endpoint == "orders" else near.get("tx_id")
        key = (near["create_time"], subject, len(self._invalid) + 1)
        self._add_row(junk.endpoint, key, junk.record)
        self._invalid.append(junk)

    def _add_row(self, endpoint: str, key: tuple[Any, ...], record: dict[str, Any]) -> None:
        self._listed[endpoint].append((key, record))
        self._sorted.pop(endpoint, None)

    def _rows(self, endpoint: str) -> list[dict[str, Any]]:
        if endpoint not in self._sorted:
            rows = sorted(self._listed[endpoint], key=lambda row: row[0])
            if self.config.newest_first:
                rows.reverse()
            self._sorted[endpoint] = [record for _, record in rows]
        return self._sorted[endpoint]

    def _page(self, endpoint: str, page: int, size: int) -> dict[str, Any]:
        if page < 1 or size < 1:
            raise SandboxError("page and size must be positive integers")
        size = min(size, self.config.page_size_cap)
        with self._lock:
            rows = self._rows(endpoint)
            max_page = math.ceil(len(rows) / size)  # 0 when there is nothing at all
            items = rows[(page - 1) * size : page * size] if page <= max_page else []
            return {
                "page": page,
                "size": size,
                "total": len(rows),
                "max_page": max_page,
                "data": deepcopy(items),
            }

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownOrder("order not found")
        return order

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=1)
        return self._clock

    def _differences(self) -> list[Difference]:
        return list(
            truth.differences(self._orders.values(), self._txs.values(), self._refunds.values())
        )


def _refund_field(name: str, value: Any) -> Any:
    try:
        if name in REFUND_MONEY_FIELDS:
            return to_decimal(value)
    except InvalidAmount as exc:
        raise SandboxError(f"{name}: {exc}") from None
    if name == "refund_et" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if name in REFUND_TEXT_FIELDS and isinstance(value, str):
        return value
    raise SandboxError(f"cannot set refund-info field {name!r} to {value!r}")
