"""The toy gateway's fake server: a seeded world (its own truth) over real HTTP on 127.0.0.1.

Served by the sandboxes' provider-neutral loop (``sandbox.kit.http``, no faults). The world
holds invoices (paid, open or void, in EUR or USD), credits of some paid invoices, a settlement
per paid invoice, and one planted violation: an invoice whose credits exceed its amount.
"""

from __future__ import annotations

import hmac
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.kit.faults import FaultRates
from sandbox.kit.http import Reply, RunningSandbox, SandboxApp
from tests.gateways.toy.paging import CREDITS, INVOICES, MAX_PER_PAGE
from tests.gateways.toy.rules import CREDITS_EXCEED_INVOICE

START = datetime(2025, 3, 1, tzinfo=UTC)
CENT = Decimal("0.01")
FEE_RATE = Decimal("0.015")
OVERSHOOT = Decimal("7.50")  # what the planted invoice's credits exceed its amount by
Object = dict[str, Any]
ObjectKey = tuple[str, str]  # (kind, external id)


@dataclass(frozen=True)
class ToyConfig:
    seed: int = 1
    invoices: int = 57
    api_key: str = "toy-api-key-0001"
    host: str = "127.0.0.1"
    port: int = 0  # the OS picks a free port


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _newest_first(objects: dict[str, Object]) -> list[Object]:
    return sorted(objects.values(), key=lambda o: (o["created_at"], o["id"]), reverse=True)


class ToyWorld:
    """The server's truth: every object it serves, and the violations planted in it."""

    def __init__(self, seed: int, invoices: int) -> None:
        rng = random.Random(f"toy-world:{seed}")
        self.invoices: dict[str, Object] = {}
        self.credits: dict[str, Object] = {}
        self.settlements: dict[str, Object] = {}
        for number in range(1, invoices + 1):
            created = START + timedelta(hours=5 * number, minutes=rng.randint(0, 59))
            status = rng.choices(["paid", "open", "void"], weights=[7, 2, 1])[0]
            amount = Decimal(rng.randint(500, 90_000)).scaleb(-2)
            invoice = self._invoice(f"inv_{number:04d}", status, rng.choice(["EUR", "USD"]))
            invoice.update(amount=amount, created_at=_iso(created))
            if status == "paid":
                invoice["fee"] = (amount * FEE_RATE).quantize(CENT)
                self._settle(invoice, created + timedelta(days=1))
                if rng.random() < 0.3:  # one or two credits, within the amount
                    for _ in range(rng.randint(1, 2)):
                        share = Decimal(rng.randint(1, 45)) / 100
                        self._credit(invoice, (amount * share).quantize(CENT), rng)
        target = next(i for i in self.invoices.values() if i["status"] == "paid")
        half = (target["amount"] / 2).quantize(CENT)
        self._credit(target, half, rng)
        self._credit(target, target["amount"] - half + OVERSHOOT, rng)
        self.planted: set[tuple[str, str]] = {(CREDITS_EXCEED_INVOICE, target["id"])}

    def _invoice(self, invoice_id: str, status: str, currency: str) -> Object:
        invoice: Object = {"id": invoice_id, "status": status, "currency": currency}
        invoice["fee"] = Decimal("0.00")
        self.invoices[invoice_id] = invoice
        return invoice

    def _settle(self, invoice: Object, when: datetime) -> None:
        self.settlements[invoice["id"]] = {
            "invoice_id": invoice["id"],
            "currency": invoice["currency"],
            "net": invoice["amount"] - invoice["fee"],
            "settled_at": _iso(when),
        }

    def _credit(self, invoice: Object, amount: Decimal, rng: random.Random) -> None:
        credit_id = f"cr_{len(self.credits) + 1:04d}"
        created = datetime.fromisoformat(invoice["created_at"]) + timedelta(
            hours=rng.randint(1, 48)
        )
        self.credits[credit_id] = {
            "id": credit_id,
            "invoice_id": invoice["id"],
            "currency": invoice["currency"],
            "amount": amount,
            "created_at": _iso(created),
        }

    def truth(self) -> dict[ObjectKey, Object]:
        """Every object served, by (kind, id)."""
        return {
            **{("invoice", i): o for i, o in self.invoices.items()},
            **{("credit", i): o for i, o in self.credits.items()},
            **{("settlement", i): o for i, o in self.settlements.items()},
        }


def toy_app(world: ToyWorld, api_key: str) -> SandboxApp:
    """The toy API: two newest-first lists and three single-object endpoints, bearer auth."""
    lists = {
        INVOICES.path: lambda: _newest_first(world.invoices),
        CREDITS.path: lambda: _newest_first(world.credits),
    }
    objects = {
        "/v1/invoices/": world.invoices,
        "/v1/credits/": world.credits,
        "/v1/settlements/": world.settlements,
    }

    def fail(status: int, reason: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status, {"code": status, "error": reason}, headers or {})

    def refusal(method: str, target: str, headers: Any, body: bytes, now: datetime) -> str | None:
        sent = headers.get("authorization", "")
        return None if hmac.compare_digest(sent, f"Bearer {api_key}") else "invalid API key"

    def answer(method: str, target: str) -> Reply:
        parts = urlsplit(target)
        if method != "GET":
            return fail(405, "method not allowed")
        if parts.path in lists:
            query = parse_qs(parts.query)
            try:
                number = max(1, int(query.get("page", ["1"])[0]))
                size = min(MAX_PER_PAGE, max(1, int(query.get("per_page", ["25"])[0])))
            except ValueError:
                return fail(400, "page and per_page must be integers")
            return Reply(200, _page(lists[parts.path](), number, size))
        for prefix, found in objects.items():
            if parts.path.startswith(prefix):
                obj = found.get(unquote(parts.path[len(prefix) :]))
                return Reply(200, obj) if obj is not None else fail(404, "not found")
        return fail(404, "no such endpoint")

    return SandboxApp(
        provider="toy",
        admin_prefix="/__admin/",
        faults=FaultRates,
        is_endpoint=lambda path: path.startswith("/v1/"),
        refusal=refusal,
        answer=answer,
        admin=lambda method, path, body: fail(404, "no admin API"),
        fail=fail,
    )


def _page(items: list[Object], number: int, size: int) -> Object:
    return {
        "items": items[(number - 1) * size : number * size],
        "page": number,
        "per_page": size,
        "pages": math.ceil(len(items) / size),
        "total": len(items),
    }


def start_toy_server(config: ToyConfig) -> RunningSandbox[ToyConfig, ToyWorld]:
    """A toy server for ``config``'s seeded world, serving from a daemon thread."""
    world = ToyWorld(config.seed, config.invoices)
    return RunningSandbox(config, world, toy_app(world, config.api_key)).start()
