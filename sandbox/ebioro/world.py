"""The Ebioro sandbox's world: payments and refunds generated from a seed, plus admin changes.

Pure and thread-safe: no I/O and no wall clock (a logical clock moves one minute per change),
one lock guards all state and readers get copies. Refunds embed their payment as it is now.
Listeners (the webhook sender) hear about payment changes after the lock is released.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sandbox.ebioro import edits, truth
from sandbox.ebioro.cases import plant_cases
from sandbox.ebioro.generate import (
    EPOCH,
    PAYABLE_STATUSES,
    REFUNDABLE_STATUSES,
    STATUS_WEIGHTS,
    Generator,
    embed,
    iso,
)
from sandbox.ebioro.model import Delivery, EbioroSandboxConfig, WebhookTarget
from sandbox.ebioro.story import lifecycle
from sandbox.ebioro.truth import Difference, Key  # by name: World.truth() hides the module
from sandbox.kit.errors import Conflict, NotFound, SandboxError
from sandbox.kit.faults import InvalidRecord
from sandbox.kit.http import is_http_url
from sandbox.kit.world import WorldBase

Ref = str | dict[str, Any]  # an object's id, or a junk record listed as it is
Row = tuple[tuple[str, str, int], Ref]  # (sort key, ref)
DEFAULT_WEBHOOK_URL = "https://shop.example/webhooks/ebioro"
CREATED, UPDATED = "transaction_created", "transaction_updated"


class UnknownObject(NotFound):
    """No payment or refund with that id."""


class World(WorldBase[Delivery]):
    """All payments and refunds of one Ebioro sandbox, and what it planted in them."""

    def __init__(self, config: EbioroSandboxConfig) -> None:
        super().__init__(config.fault_rates())
        self.config = config
        self._rng = random.Random(config.seed)
        self._gen = Generator(self._rng, config.mismatch_rate, config.dust_rate)
        self._payments: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}  # without the embedded payment
        self._payment_of: dict[str, str] = {}  # refund id → payment id
        self._listed: dict[str, list[Row]] = {"payments": [], "refunds": []}
        self._sorted: dict[str, list[Ref]] = {}
        self._invalid: list[InvalidRecord] = []
        self._webhook = WebhookTarget(config.webhook_url) if config.webhook_url else None
        self._clock = EPOCH
        for i in range(config.payments):
            jitter = timedelta(
                seconds=self._rng.randrange(60), milliseconds=self._rng.randrange(999)
            )
            self._create(EPOCH + timedelta(minutes=i) + jitter, self._gen.status())
        # Legitimate cases that must not alert (truth()["legit_cases"]), from their own Random.
        self._cases = plant_cases(
            config.seed, config.dust_rate > 0, self._payments, self._refunds, self._payment_of
        )

    # --- the four API reads

    def payments_page(self, page: int, limit: int) -> dict[str, Any]:
        return self._page("payments", page, limit)

    def refunds_page(self, page: int, limit: int) -> dict[str, Any]:
        return self._page("refunds", page, limit)

    def payment(self, payment_id: str) -> dict[str, Any]:
        with self._lock:
            return deepcopy(self._payment(payment_id))

    def refund(self, refund_id: str) -> dict[str, Any]:
        with self._lock:
            if refund_id not in self._refunds:
                raise UnknownObject("refund not found")
            return self._render(refund_id, "refunds")

    # --- the truth, for tests, the demo and benchmarks

    def truth(self) -> dict[str, Any]:
        """Everything, JSON-ready: what the lists serve (junk included) and what was planted."""
        with self._lock:
            return {
                "payments": [self._render(ref, "payments") for ref in self._rows("payments")],
                "refunds": [self._render(ref, "refunds") for ref in self._rows("refunds")],
                "expected_mismatches": sorted(self.expected_mismatches()),
                "dust_cases": sorted(self.dust_cases()),
                "held_by_grace": sorted(self.held_by_grace()),
                "legit_cases": dict(self._cases),
                "invalid_records": [asdict(r) for r in self._invalid],
                "deliveries": [asdict(d) for d in self._deliveries.items()],
                "faults": self._faults.as_json(),
                "webhook": asdict(self._webhook) if self._webhook else None,
            }

    def expected_mismatches(self) -> set[tuple[str, str]]:
        """(rule, subject_id) pairs a correct reconciler reports now; see ``truth``."""
        with self._lock:
            found, flags = self._findings()
            return truth.expected_mismatches(found, flags)

    def dust_cases(self) -> set[tuple[str, str]]:
        """(rule, subject_id) pairs off by less than one unit: must NOT be reported."""
        with self._lock:
            found, flags = self._findings()
            return truth.dust_cases(found, flags)

    def held_by_grace(self) -> set[tuple[str, str]]:
        """Planted pairs a fresh sync finds only once the refund grace has passed since."""
        with self._lock:
            return truth.held_by_grace(self._findings()[1])

    def legit_cases(self) -> dict[str, str]:
        """Legitimate cases planted to catch false alerts: case name → payment id."""
        with self._lock:
            return dict(self._cases)

    def invalid_records(self) -> list[InvalidRecord]:
        with self._lock:
            return deepcopy(self._invalid)

    # --- changes (the admin API); each payment change is posted to the webhook target

    def add_payments(self, count: int, status: str | None = None) -> list[str]:
        """Add ``count`` payments newer than any other (``status``, else a random mix)."""
        edits.whole("count", count, 1, 10_000)
        if status is not None:
            edits.choice("status", status, frozenset(STATUS_WEIGHTS))
        with self._lock:
            ids = [self._create(self._tick(), status or self._gen.status()) for _ in range(count)]
            created = [deepcopy(self._payments[i]) for i in ids]
        for payment in created:
            self._listeners.notify(CREATED, payment)
        return ids

    def pay(
        self,
        payment_id: str,
        amount_paid: int | None = None,
        mismatch: bool = False,
        dust: bool = False,
    ) -> dict[str, Any]:
        """The customer pays (in full by default; less: ``underpaid``) → the payment.
        ``mismatch`` makes amount_received or amount_remaining disagree; ``dust`` writes
        amount_received with a float artifact far below a unit."""
        with self._lock:
            payment = self._payment(payment_id)
            if payment["status"] not in PAYABLE_STATUSES:
                raise Conflict(f"payment is {payment['status']}; only open or processing pay")
            quote = payment["settlement_amount"]
            paid = (
                quote if amount_paid is None else edits.whole("amount_paid", amount_paid, 1, quote)
            )
            self._gen.pay(payment, self._tick(), paid, bool(mismatch), bool(dust))
            changed = deepcopy(payment)
        self._listeners.notify(UPDATED, changed)
        return changed

    def settle(self, payment_id: str, status: str = "paid") -> dict[str, Any]:
        """Settlement to the merchant moves on to ``processing`` or ``paid`` → the payment."""
        edits.choice("status", status, frozenset({"processing", "paid"}))
        with self._lock:
            payment = self._payment(payment_id)
            if payment["status"] not in ("paid", "refunded"):
                raise Conflict(f"payment is {payment['status']}; only paid payments settle")
            if payment["settlement_status"] in (status, "paid"):
                raise Conflict(f"settlement is already {payment['settlement_status']}")
            self._gen.settle(payment, self._tick(), status)
            changed = deepcopy(payment)
        self._listeners.notify(UPDATED, changed)
        return changed

    def refund_payment(
        self,
        payment_id: str,
        value: int | None = None,
        status: str = "refunded",
        mismatch: Any = None,
    ) -> dict[str, Any]:
        """Refund a paid payment → the refund; ``value`` defaults to what is left to refund.
        Documented: one refund in progress at a time, in total at most amount_paid. Once its
        completed refunds cover amount_paid the payment is marked refunded (webhook).
        ``mismatch``: true (= "exceeds"), "exceeds", "no-settlement-id" (needs status
        refunded), "asset", or "total" (this refund fits, the payment's refunds together don't;
        needs an earlier refund)."""
        plant = edits.refund_plant(mismatch)
        edits.choice("status", status, edits.REFUND_STATUSES)
        if plant == "no-settlement-id" and status != "refunded":
            raise SandboxError("mismatch no-settlement-id needs status refunded")
        with self._lock:
            payment = self._payment(payment_id)
            if payment["status"] not in REFUNDABLE_STATUSES:
                raise Conflict(f"payment is {payment['status']}; only paid payments refund")
            mine = [self._refunds[r] for r, p in self._payment_of.items() if p == payment_id]
            cents = edits.refund_value(payment["amount_paid"], mine, value, plant, self._rng)
            at = self._tick()
            refund = self._gen.refund(payment, at, cents, status, plant)
            refund_id = self._store_refund(refund, payment_id, at)
            changed = self._refund_completed(payment)
            rendered = self._render(refund_id, "refunds")
        if changed:
            self._listeners.notify(UPDATED, rendered["payment"])
        return rendered

    def update_refund(self, refund_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change refund fields in place. Becoming ``refunded`` without a ``settlement_Id`` in
        ``changes`` gives it one; completing the payment's refunds marks it refunded."""
        checked = edits.refund_changes(changes)
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise UnknownObject("refund not found")
            refund["amount"].update(checked.pop("amount", {}))
            completes = checked.get("status") == "refunded" and "settlement_Id" not in checked
            if completes and not refund["settlement_Id"]:
                checked["settlement_Id"] = self._gen.hex64()  # settled on Stellar
            refund.update(checked)
            changed = self._refund_completed(self._payments[self._payment_of[refund_id]])
            rendered = self._render(refund_id, "refunds")
        if changed:
            self._listeners.notify(UPDATED, rendered["payment"])
        return rendered

    def update_payment(self, payment_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change payment fields in place, silently (no webhook): the provider correcting data."""
        checked = edits.payment_changes(changes)
        with self._lock:
            payment = self._payment(payment_id)
            payment.update(checked)
            return deepcopy(payment)

    def set_webhook(self, url: str | None) -> WebhookTarget | None:
        """POST every payment change to ``url`` (None: stop)."""
        if url is not None and not is_http_url(str(url)):
            raise SandboxError("url must be an http(s) URL")
        with self._lock:
            self._webhook = WebhookTarget(str(url)) if url else None
            return self._webhook

    def webhook_target(self) -> WebhookTarget | None:
        with self._lock:
            return self._webhook

    # --- internals (callers hold the lock)

    def _create(self, created: datetime, status: str) -> str:
        webhook_url = self._webhook.url if self._webhook else DEFAULT_WEBHOOK_URL
        invalid_rate = self._faults.rate_invalid_record
        story = lifecycle(self._gen, created, status, webhook_url, invalid_rate)
        payment_id = str(story.payment["id"])
        self._payments[payment_id] = story.payment
        self._add_row("payments", (story.payment["createdAt"], payment_id, 0), payment_id)
        if story.refund is not None and story.refunded_at is not None:
            self._store_refund(story.refund, payment_id, story.refunded_at)
        for when, junk in story.junk:
            self._add_junk(when, junk)
        self._clock = max(self._clock, story.ends)
        return payment_id

    def _store_refund(self, refund: dict[str, Any], payment_id: str, at: datetime) -> str:
        refund_id = str(refund["refund_id"])
        self._refunds[refund_id] = refund
        self._payment_of[refund_id] = payment_id
        self._add_row("refunds", (iso(at), refund_id, 0), refund_id)
        return refund_id

    def _add_junk(self, when: str, junk: InvalidRecord) -> None:
        # Listed right next to the record it imitates: an extra item, never a replacement.
        self._add_row(junk.endpoint, (when, "", len(self._invalid) + 1), junk.record)
        self._invalid.append(junk)

    def _add_row(self, endpoint: str, key: tuple[str, str, int], ref: Ref) -> None:
        self._listed[endpoint].append((key, ref))
        self._sorted.pop(endpoint, None)

    def _rows(self, endpoint: str) -> list[Ref]:
        if endpoint not in self._sorted:
            rows = sorted(self._listed[endpoint], key=lambda row: row[0])
            if self.config.newest_first:
                rows.reverse()
            self._sorted[endpoint] = [ref for _, ref in rows]
        return self._sorted[endpoint]

    def _render(self, ref: Ref, endpoint: str) -> dict[str, Any]:
        if not isinstance(ref, str):
            return deepcopy(ref)
        if endpoint == "payments":
            return deepcopy(self._payments[ref])
        return embed(self._refunds[ref], self._payments[self._payment_of[ref]])

    def _page(self, endpoint: str, page: int, limit: int) -> dict[str, Any]:
        if page < 1 or limit < 1:
            raise SandboxError("page and limit must be positive integers")
        limit = min(limit, self.config.page_size_cap)
        with self._lock:
            rows = self._rows(endpoint)
            total_pages = math.ceil(len(rows) / limit)  # 0 when there is nothing at all
            chosen = rows[(page - 1) * limit : page * limit]
            items = [self._render(ref, endpoint) for ref in chosen]
            meta = {
                "totalItems": len(rows),
                "itemCount": len(items),
                "itemsPerPage": limit,
                "totalPages": total_pages,
                "currentPage": page,
            }
            return {"items": items, "meta": meta}

    def _payment(self, payment_id: str) -> dict[str, Any]:
        payment = self._payments.get(payment_id)
        if payment is None:
            raise UnknownObject("payment not found")
        return payment

    def _refund_completed(self, payment: dict[str, Any]) -> bool:
        """Mark ``payment`` refunded once its completed refunds cover amount_paid; True if so."""
        done = [
            self._refunds[r]["amount"]["value"]
            for r, p in self._payment_of.items()
            if p == payment["id"] and self._refunds[r]["status"] == "refunded"
        ]
        if payment["status"] == "refunded" or not done or sum(done) < payment["amount_paid"]:
            return False
        self._gen.mark_refunded(payment, self._tick())
        return True

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=1)
        return self._clock

    def _findings(self) -> tuple[list[Difference], set[Key]]:
        payments = list(self._payments.values())
        refunds = [self._render(refund_id, "refunds") for refund_id in self._refunds]
        return list(truth.differences(payments, refunds)), truth.flagged(payments, refunds)
