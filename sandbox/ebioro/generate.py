"""Deterministic Ebioro-shaped records for the sandbox: payments, refunds and junk list items.

Pure: every value comes from the ``random.Random`` passed in and from times the caller gives
(a fixed epoch plus minutes), never from the wall clock or the global random. Amounts are as
the doc shows them (docs/gateways/ebioro.md (E-AMT-1, E-AMT-2, E-AMT-3)): ``amount.value`` integer
fiat minor units; the settlement
amounts integer USDC cents, except ``settlement_fee`` = 2.5 % of ``settlement_amount``, which is
fractional when it falls so (2663 → 66.575) and written as a JSON number with its own digits.
"""

from __future__ import annotations

import base64
import random
import uuid
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import quote_plus

from ledger import jsonx
from sandbox.kit.faults import InvalidRecord

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# The doc examples' asset (Circle's testnet USDC, inferred) and the one on the refunds concept
# page (mainnet, inferred): a refund in the latter is the planted "wrong asset".
TEST_USDC = "USDC:GBBD47IF6LWK7P7MDEVSCWR7DPUWV3NY3DTQEVFL4NAT4AQH3ZLLFLA5"
LIVE_USDC = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
FEE_RATE = Decimal("0.025")  # settlement_fee / settlement_amount in both doc examples (inferred)
# USDC cents per fiat minor unit: fixed sandbox rates (USDC tracks USD one to one).
FIAT_RATES = {
    "USD": Decimal(1),
    "EUR": Decimal("1.0842"),
    "GBP": Decimal("1.2671"),
    "CAD": Decimal("0.7312"),
}
CURRENCY_WEIGHTS = {"USD": 85, "EUR": 8, "GBP": 4, "CAD": 3}
STATUS_WEIGHTS = {
    "paid": 38,
    "refunded": 14,
    "expired": 12,
    "open": 10,
    "processing": 9,
    "underpaid": 9,
    "canceled": 8,
}
PAYABLE_STATUSES = frozenset({"open", "processing"})
# Documented: paid or underpaid_accepted (the latter is not generated). A partial refund leaves
# a payment paid; it is marked refunded once its completed refunds cover amount_paid.
REFUNDABLE_STATUSES = frozenset({"paid"})
REFUND_PLANTS = frozenset({"exceeds", "no-settlement-id", "asset", "total"})
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B64URL = _ID_CHARS
_HEX = "0123456789abcdef"
_JWT_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, as the API writes it: ``2023-11-18T20:46:15.652Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    """``history[].time``: epoch milliseconds."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def fee_for(settlement_amount: int) -> int | Decimal:
    """2.5 % of the amount: an int when whole (25), else the exact Decimal (66.575)."""
    fee = (Decimal(settlement_amount) * FEE_RATE).normalize()
    return int(fee) if fee == fee.to_integral_value() else fee


def embed(refund: dict[str, Any], payment: dict[str, Any]) -> dict[str, Any]:
    """A refund as served: with a copy of its payment, which (as in the doc example) has no
    ``checkout_id``."""
    embedded = {name: deepcopy(value) for name, value in payment.items() if name != "checkout_id"}
    return {**deepcopy(refund), "payment": embedded}


class Generator:
    """Makes records from one seeded ``Random``; the same call sequence gives the same records."""

    def __init__(self, rng: random.Random, mismatch_rate: float, dust_rate: float) -> None:
        self.rng = rng
        self.mismatch_rate = mismatch_rate
        self.dust_rate = dust_rate
        self.merchant_account = self.stellar_account()
        self._ids: set[str] = set()
        self._order_number = 1000

    # --- records

    def payment(self, created: datetime, webhook_url: str) -> dict[str, Any]:
        """A new ``open`` payment with every field of the doc's payment object
        (docs/gateways/ebioro.md (E-PAY-1))."""
        rng = self.rng
        names = list(CURRENCY_WEIGHTS)
        currency = rng.choices(names, weights=[CURRENCY_WEIGHTS[n] for n in names])[0]
        minor = rng.randrange(500, 200_000)
        quote = int((minor * FIAT_RATES[currency]).quantize(Decimal(1), ROUND_HALF_EVEN))
        payment_id = self.identifier("pt_")
        self._order_number += 1
        description = f"Order #{self._order_number}"
        locale = rng.choice(("en", "es"))
        return {
            "id": payment_id,
            "checkout_id": payment_id,
            "createdAt": iso(created),
            "updatedAt": iso(created),
            "expiresAt": iso(created + timedelta(minutes=30, milliseconds=-3)),
            "mode": "test",
            "amount": {"value": minor, "currency": currency},
            "description": description,
            "status": "open",
            "settlement_status": "open",
            "redirectUrl": "https://shop.example/checkout/complete",
            "webhookUrl": webhook_url,
            "hostedUrl": self._hosted_url(payment_id, created, locale),
            "qrCode": self._qr_code(payment_id, quote, description),
            "merchantName": "Sandbox Store",
            "cancelUrl": "https://shop.example/checkout/cancel",
            "locale": locale,
            "metadata": {"orderId": self._order_number} if rng.random() < 0.7 else {},
            "stellarTxId": None,  # no customer payment yet
            "settlement_stellarTxId": None,  # no settlement yet
            "settlement_currency": "USDC",
            "settlement_amount": quote,
            "settlement_fee": fee_for(quote),
            "amount_paid": 0,
            "amount_received": 0,
            "amount_remaining": quote,
            "history": [self._event(created, "Payment created")],
            "sender_account": None,  # known once the customer pays
            "asset_id": TEST_USDC,
            "refunded": False,
            "type": "order",
        }

    def pay(
        self, payment: dict[str, Any], at: datetime, paid: int, plant: bool, dust: bool
    ) -> None:
        """The customer pays ``paid`` cents: ``paid`` in full, else ``underpaid``. ``plant``
        makes ``amount_received`` or ``amount_remaining`` disagree with the others; ``dust``
        writes ``amount_received`` as a float-computing server would (2662.9999999999995)."""
        quote = payment["settlement_amount"]
        payment.update(
            status="paid" if paid >= quote else "underpaid",
            updatedAt=iso(at),
            stellarTxId=self.hex64(),
            sender_account=self.stellar_account(),
            amount_paid=paid,
            amount_received=paid,
            amount_remaining=quote - paid,
        )
        payment["history"].append(self._event(at, "Customer paid"))
        if dust:  # e.g. JavaScript's 26.63 * 100: far below any unit, never a mismatch
            artifact = Decimal(self.rng.randrange(1, 10)).scaleb(-13)
            payment["amount_received"] = paid + self.rng.choice((artifact, -artifact))
        if plant:
            name = self.rng.choice(("amount_received", "amount_remaining"))
            delta = self.offset()
            payment[name] += delta if payment[name] + delta >= 0 else -delta

    def settle(self, payment: dict[str, Any], at: datetime, status: str) -> None:
        """Settlement moves to ``processing`` or ``paid`` (which carries the settlement tx)."""
        payment.update(settlement_status=status, updatedAt=iso(at))
        if status == "paid" and payment["settlement_stellarTxId"] is None:
            payment["settlement_stellarTxId"] = self.hex64()

    def refund(
        self,
        payment: dict[str, Any],
        at: datetime,
        value: int | Decimal,
        status: str,
        plant: str | None,
    ) -> dict[str, Any]:
        """A refund of ``value`` cents (docs/gateways/ebioro.md (E-REF-1), without its embedded
        payment). ``plant``:
        "exceeds", "no-settlement-id" or "asset" (others are the caller's: "total")."""
        if plant == "exceeds":
            value = payment["amount_paid"] + self.rng.randrange(2, 50)
        settled = status == "refunded" and plant != "no-settlement-id"
        missing_id = self.rng.choice((None, "")) if plant == "no-settlement-id" else None
        return {
            "amount": {
                "asset_id": LIVE_USDC if plant == "asset" else payment["asset_id"],
                "value": value,
            },
            "status": status,
            "description": self.rng.choice(("Refund for overcharge", "Customer return")),
            "settlement_Id": self.hex64() if settled else missing_id,
            "metadata": {},
            "refund_id": self.identifier("rf_"),
        }

    def mark_refunded(self, payment: dict[str, Any], at: datetime) -> None:
        payment.update(status="refunded", refunded=True, updatedAt=iso(at))
        payment["history"].append(self._event(at, "Payment refunded"))

    def junk_payment(self, near: dict[str, Any]) -> InvalidRecord:
        """A list item that must fail validation, shaped like (and listed next to) ``near``."""
        record = deepcopy(near)
        record["id"] = record["checkout_id"] = self.identifier("pt_")
        kind = self.rng.randrange(4)
        if kind == 0:
            record["amount"]["value"] = "abc"
            return InvalidRecord("payments", "amount.value is not a number", record)
        if kind == 1:
            del record["id"]
            return InvalidRecord("payments", "id is missing", record)
        if kind == 2:
            record["createdAt"] = "not-a-date"
            return InvalidRecord("payments", "createdAt is not a timestamp", record)
        record["status"] = "cancelled"  # the provider spells it "canceled"
        return InvalidRecord("payments", "status is not a documented value", record)

    def junk_refund(self, near: dict[str, Any]) -> InvalidRecord:
        record = deepcopy(near)
        record["refund_id"] = self.identifier("rf_")
        kind = self.rng.randrange(3)
        if kind == 0:
            record["amount"]["value"] = "abc"
            return InvalidRecord("refunds", "amount.value is not a number", record)
        if kind == 1:
            del record["refund_id"]
            return InvalidRecord("refunds", "refund_id is missing", record)
        del record["payment"]
        return InvalidRecord("refunds", "payment is missing", record)

    # --- pieces

    def status(self) -> str:
        names = list(STATUS_WEIGHTS)
        return self.rng.choices(names, weights=[STATUS_WEIGHTS[n] for n in names])[0]

    def offset(self) -> int:
        """A planted difference: 2 to 49 cents, either sign."""
        return self.rng.randrange(2, 50) * self.rng.choice((1, -1))

    def identifier(self, prefix: str) -> str:
        """``pt_``/``rf_`` + 10 characters of ``[A-Za-z0-9_-]``, unique within this generator."""
        while True:
            candidate = prefix + "".join(self.rng.choice(_ID_CHARS) for _ in range(10))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def hex64(self) -> str:
        return "".join(self.rng.choice(_HEX) for _ in range(64))

    def stellar_account(self) -> str:
        return "G" + "".join(self.rng.choice(_BASE32) for _ in range(55))

    def _event(self, at: datetime, description: str) -> dict[str, Any]:
        return {"time": epoch_ms(at), "status": "success", "description": description}

    def _hosted_url(self, payment_id: str, created: datetime, locale: str) -> str:
        issued = int(created.timestamp())
        claims = {
            "iss": "test.ebioro.com",
            "sub": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "iat": issued,
            "exp": issued + 3600,
        }
        body = base64.urlsafe_b64encode(jsonx.dumps(claims).encode()).rstrip(b"=").decode()
        signature = "".join(self.rng.choice(_B64URL) for _ in range(43))
        token = f"{_JWT_HEADER}.{body}.{signature}"
        return (
            "https://ebioro-sandbox-merchant-widget.netlify.app/payments"
            f"?paymentId={payment_id}&auth_token={token}&lang={locale}"
        )

    def _qr_code(self, payment_id: str, quote: int, description: str) -> str:
        code, issuer = TEST_USDC.split(":")
        whole = format(Decimal(quote).scaleb(-2), "f")  # SEP-7 amount: decimal whole USDC
        return (
            f"web+stellar:pay?destination={self.merchant_account}&amount={whole}"
            f"&asset_code={code}&asset_issuer={issuer}&memo={payment_id}&memo_type=text"
            f"&msg={quote_plus(description)}"
        )
