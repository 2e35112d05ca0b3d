"""Shared Ebioro test data: payment and refund payloads shaped like the doc's, and snapshots.

The payment is the webhook example's (docs/gateways/ebioro.md (E-HOOK-1)): $10.00 paid as 1000 USDC
cents, fee
25, settled. Payloads go through ``ledger.jsonx`` like everything the store holds.
"""

from __future__ import annotations

from typing import Any

from ledger.model import Snapshot
from tests.strategies import make_snapshot, wire

PAYMENT_ID = "pt_ABC123"
ASSET = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"


def payment_payload(**fields: Any) -> dict[str, Any]:
    """A paid, settled payment; ``fields`` override (None keeps the key with JSON null)."""
    base: dict[str, Any] = {
        "id": PAYMENT_ID,
        "createdAt": "2025-02-06T10:00:00.000Z",
        "updatedAt": "2025-02-06T11:00:00.000Z",
        "status": "paid",
        "settlement_status": "paid",
        "amount": {"value": 1000, "currency": "USD"},
        "settlement_amount": 1000,
        "settlement_currency": "USDC",
        "settlement_fee": 25,
        "amount_paid": 1000,
        "amount_received": 1000,
        "amount_remaining": 0,
        "asset_id": ASSET,
    }
    return wire({**base, **fields})


def refund_payload(refund_id: str = "rf_1", value: Any = 500, **fields: Any) -> dict[str, Any]:
    """A completed refund of ``value`` USDC cents with its payment embedded."""
    base: dict[str, Any] = {
        "refund_id": refund_id,
        "status": "refunded",
        "amount": {"asset_id": ASSET, "value": value},
        "settlement_Id": "a1b8" * 16,
        "metadata": {},
        "payment": payment_payload(),
    }
    return wire({**base, **fields})


def snapshot(payload: dict[str, Any], *, version: int = 1, seq: int | None = None) -> Snapshot:
    """A stored-looking Ebioro snapshot; the kind follows from the payload's id field."""
    kind = "refund" if "refund_id" in payload else "payment"
    external_id = payload["refund_id"] if kind == "refund" else payload["id"]
    return make_snapshot(
        kind, payload, source="ebioro", external_id=external_id, version=version, seq=seq
    )
