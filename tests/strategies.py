"""Shared test data: Aurpay payload builders, Hypothesis strategies and Snapshot helpers.

Payloads go through ``ledger.jsonx`` (dumps → loads) so tests see exactly what the store sees:
amounts as JSON strings ("0.00102549") or JSON numbers (parsed as ``Decimal``), never floats.
Currencies cover 6, 8 and 18 decimal places; fees carry extra digits beyond the chain's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ledger import jsonx
from ledger.chain import content_hash
from ledger.model import Snapshot
from ledger.money import fmt, to_decimal

OBSERVED_AT = datetime(2025, 2, 6, 12, 0, tzinfo=UTC)
STORE_MAX_PLACES = 21  # fees with more places than an 18-decimal chain occur; the store keeps 36


@dataclass(frozen=True)
class Coin:
    currency: str
    chain: str
    places: int

    @property
    def unit(self) -> Decimal:
        return Decimal(1).scaleb(-self.places)


BTC = Coin("BTC", "BTC", 8)
USDT = Coin("USDT-TRC20", "TRX", 6)
ETH = Coin("ETH", "ETH", 18)
COINS = (BTC, USDT, ETH)

PAID = ("SUCCESS", "RESOLVED", "REFUNDED")
UNPAID = ("PENDING", "OVERDUE", "TERMINATED", "PARTIAL")
STATUSES = PAID + UNPAID


def wire(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as the store holds it: through Decimal-exact JSON and back."""
    parsed: dict[str, Any] = jsonx.loads(jsonx.dumps(payload))
    return parsed


def order_payload(**fields: Any) -> dict[str, Any]:
    """An order object shaped like the doc's callback example (docs/gateways/aurpay.md (A-ORD-1)),
    fields overridden."""
    base: dict[str, Any] = {
        "user_id": "mct-bea5c44da875",
        "order_id": "20250207040935220628",
        "order_type": "ORDER",
        "platform": "AURPAY",
        "status": "SUCCESS",
        "chain": "BTC",
        "chain_name": "Bitcoin",
        "currency": "BTC",
        "amount": "0.00102549",
        "vs_price": "100.0",
        "vs_currency": "USD",
        "remark": "",
        "refund": False,
        "bind_id": None,
        "create_time": "2025-02-06T00:00:00",
        "update_time": "2025-02-06T00:00:00",
        "tx_id": "ca1f0db3-0a3d-47c5-94ed-c94193aa1934",
        "tx_type": "ORDER",
        "obtained": None,
        "fee": "0.00000820392",
        "from_addr": None,
        "to_addr": "tb1q2vgyv8xh0d2sv9j8gpeuedd8sm7pyx5l064s2e",
        "tx_hash": None,
        "tx_hash_list": [],
        "contract_id": None,
        "website": None,
    }
    return wire({**base, **fields})


def refund_payload(**fields: Any) -> dict[str, Any]:
    """A refund-info ``data`` object shaped like the doc's example (docs/gateways/aurpay.md
    (A-REF-1)), fields overridden."""
    base: dict[str, Any] = {
        "order_id": "20240614061316661529",
        "chain": "TRX",
        "currency": "USDT-TRC20",
        "amount": Decimal("7.6883"),
        "network_fee": Decimal("0.353"),
        "obtained": Decimal("7.3353"),
        "from_addr": "TMiJBaNdRVABNhZGwBx5vKWYCafCwGzuWn",
        "to_addr": "TFMsMzcQEmqEAxjaGnjQCE2TaeJYuHhCrF",
        "refund_et": 60,
    }
    return wire({**base, **fields})


def transaction_payload(**fields: Any) -> dict[str, Any]:
    """A transaction list item (docs/gateways/aurpay.md (A-TX-1): user_id, tx_id, tx_type, status,
    chain, currency, amount,
    obtained, fee), fields overridden."""
    base: dict[str, Any] = {
        "user_id": "mct-bea5c44da875",
        "tx_id": "ca1f0db3-0a3d-47c5-94ed-c94193aa1934",
        "tx_type": "ORDER",
        "status": "SUCCESS",
        "chain": "BTC",
        "currency": "BTC",
        "amount": "0.00102549",
        "obtained": "0.00101728608",
        "fee": "0.00000820392",
    }
    return wire({**base, **fields})


_ID_FIELD = {"order": "order_id", "refund": "order_id", "transaction": "tx_id"}


def make_snapshot(
    kind: str,
    payload: Mapping[str, Any],
    *,
    version: int = 1,
    seq: int | None = None,
    observed_at: datetime = OBSERVED_AT,
    source: str = "aurpay",
    external_id: str | None = None,
) -> Snapshot:
    """A stored-looking snapshot of ``payload`` (hash-chain fields are placeholders)."""
    return Snapshot(
        seq=version if seq is None else seq,
        source=source,
        kind=kind,
        external_id=external_id or str(payload[_ID_FIELD[kind]]),
        version=version,
        observed_at=observed_at,
        content_hash=content_hash(payload),
        prev_hash="0" * 64,
        entry_hash="1" * 64,
        payload=payload,
    )


# --- Hypothesis strategies -------------------------------------------------------------------

coins = st.sampled_from(COINS)


def units(
    coin: Coin, places: int | None = None, max_whole: int = 10**9
) -> st.SearchStrategy[Decimal]:
    """Positive amounts with up to ``places`` decimals (default: the coin's)."""
    places = coin.places if places is None else places
    return st.integers(1, max_whole * 10**places).map(lambda n: Decimal(n).scaleb(-places))


def json_amount(value: Decimal) -> st.SearchStrategy[Any]:
    """``value`` as the provider may send it: a JSON string or a JSON number."""
    return st.sampled_from([fmt(value), value])


@st.composite
def money(draw: st.DrawFn, coin: Coin, max_places: int = STORE_MAX_PLACES) -> tuple[Decimal, ...]:
    """(gross, fee, net) with net = gross − fee exactly; the fee may carry up to three digits
    more than the chain (capped at ``max_places``), like Aurpay's BTC fee 0.00000820392."""
    gross = draw(units(coin))
    fee_places = draw(st.integers(coin.places, min(coin.places + 3, max(max_places, coin.places))))
    fee = draw(st.integers(0, 10**fee_places // 100).map(lambda n: Decimal(n).scaleb(-fee_places)))
    fee = min(fee, gross)
    return gross, fee, gross - fee


def skews(coin: Coin) -> st.SearchStrategy[Decimal]:
    """Differences to add to an obtained: none, dust, exactly one unit, two units, anything."""
    unit = coin.unit
    return st.one_of(
        st.sampled_from([Decimal(0), unit / 10, -unit / 10, unit, -unit, 2 * unit, -2 * unit]),
        st.integers(-(10**6), 10**6).map(lambda n: unit * n),
    )


@st.composite
def orders(
    draw: st.DrawFn,
    coin: Coin | None = None,
    statuses: tuple[str, ...] = STATUSES,
    consistent: bool = False,
    max_places: int = STORE_MAX_PLACES,
) -> dict[str, Any]:
    """Order payloads; with ``consistent`` obtained (when present) equals amount − fee."""
    coin = coin or draw(coins)
    gross, fee, net = draw(money(coin, max_places))
    obtained = draw(st.none() | st.just(net))
    if obtained is not None and not consistent:
        obtained += draw(skews(coin))
    return order_payload(
        status=draw(st.sampled_from(statuses)),
        chain=coin.chain,
        currency=coin.currency,
        amount=draw(json_amount(gross)),
        fee=draw(st.none() | json_amount(fee)) if fee == 0 else draw(json_amount(fee)),
        obtained=None if obtained is None else draw(json_amount(obtained)),
        order_id=str(draw(st.integers(10**19, 10**20 - 1))),
    )


@st.composite
def refunds(
    draw: st.DrawFn,
    coin: Coin | None = None,
    consistent: bool = False,
    max_places: int = STORE_MAX_PLACES,
) -> dict[str, Any]:
    """Refund-info payloads as JSON numbers or strings; with ``consistent``
    amount − network_fee = obtained."""
    coin = coin or draw(coins)
    gross, network_fee, net = draw(money(coin, max_places))
    obtained = net if consistent else net + draw(skews(coin))
    return refund_payload(
        chain=coin.chain,
        currency=coin.currency,
        amount=draw(json_amount(gross)),
        network_fee=draw(json_amount(network_fee)),
        obtained=draw(json_amount(obtained)),
    )


@st.composite
def consistent_groups(draw: st.DrawFn) -> tuple[Snapshot, Snapshot, Snapshot | None]:
    """A paid order, its transaction and (for REFUNDED) its refund, all reconciling."""
    coin = draw(coins)
    order = draw(orders(coin, statuses=PAID, consistent=True))
    brought_in = to_decimal(order["amount"]) - to_decimal(order["fee"] or 0)
    tx = transaction_payload(
        chain=coin.chain,
        currency=coin.currency,
        amount=order["amount"],
        fee=order["fee"],
        obtained=draw(json_amount(brought_in)),
    )
    refund = None
    if order["status"] == "REFUNDED":
        most = int(brought_in / coin.unit)  # whole units: the refund never exceeds brought_in
        gross = draw(st.integers(0, most)) * coin.unit
        network_fee = draw(st.integers(0, int(gross / coin.unit))) * coin.unit
        payload = refund_payload(
            order_id=order["order_id"],
            chain=coin.chain,
            currency=coin.currency,
            amount=draw(json_amount(gross)),
            network_fee=draw(json_amount(network_fee)),
            obtained=draw(json_amount(gross - network_fee)),
        )
        refund = make_snapshot("refund", payload)
    return make_snapshot("order", order), make_snapshot("transaction", tx), refund
