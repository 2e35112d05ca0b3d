"""One seeded payment's life in the sandbox: created, maybe paid, settled, refunded, with plants.

Pure: ``lifecycle`` draws everything from the generator's ``Random`` and returns the records;
the world only stores them. Statuses follow the doc's flow (docs/gateways/ebioro.md (E-FLOW-1)):
open →
paid/underpaid → settlement processing → paid → refund; unpaid payments end expired/canceled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.ebioro.generate import Generator, embed, iso
from sandbox.kit.faults import InvalidRecord


@dataclass
class Story:
    payment: dict[str, Any]
    ends: datetime  # the latest moment the story touched
    refund: dict[str, Any] | None = None
    refunded_at: datetime | None = None
    junk: list[tuple[str, InvalidRecord]] = field(default_factory=list)  # (list position, item)


def lifecycle(
    gen: Generator, created: datetime, status: str, webhook_url: str, invalid_rate: float
) -> Story:
    """A payment that ends in ``status``; each step rolls its plant at the mismatch rate."""
    rng = gen.rng
    payment = gen.payment(created, webhook_url)
    at = created + timedelta(minutes=rng.randrange(1, 25))
    story = Story(payment, created + timedelta(minutes=30))
    if status in ("paid", "underpaid", "refunded"):
        quote = payment["settlement_amount"]
        paid = quote if status != "underpaid" else max(1, quote * rng.randrange(40, 96) // 100)
        plant, dust = rng.random() < gen.mismatch_rate, rng.random() < gen.dust_rate
        gen.pay(payment, at, paid, plant, dust)
    if status in ("paid", "refunded"):
        at += timedelta(minutes=rng.randrange(30, 24 * 60))
        roll = rng.random()  # most paid payments are settled, some still on their way
        if status == "refunded" or roll < 0.9:
            gen.settle(payment, at, "paid" if status == "refunded" or roll < 0.8 else "processing")
    if status == "refunded":
        at += timedelta(minutes=rng.randrange(60, 72 * 60))
        if rng.random() < gen.mismatch_rate:
            gen.mark_refunded(payment, at)  # planted: a refunded payment without a refund
        else:
            _refund(gen, story, at, "refunded", payment["amount_paid"])
            gen.mark_refunded(payment, at)
    elif status == "paid" and rng.random() < 0.15:  # a refund under way, failed or partial
        at += timedelta(minutes=rng.randrange(60, 72 * 60))
        refund_status = rng.choice(("open", "processing", "failed", "refunded"))
        partial = max(1, payment["amount_paid"] * rng.randrange(10, 91) // 100)
        _refund(gen, story, at, refund_status, partial)
    elif status in ("expired", "canceled", "processing"):
        at = created + timedelta(minutes=30) if status == "expired" else at
        payment.update(status=status, updatedAt=iso(at))
    story.ends = max(story.ends, at)
    if rng.random() < invalid_rate:
        story.junk.append((payment["createdAt"], gen.junk_payment(payment)))
    if story.refund is not None and rng.random() < invalid_rate:
        near = embed(story.refund, payment)
        story.junk.append((iso(at), gen.junk_refund(near)))
    return story


def _refund(gen: Generator, story: Story, at: datetime, status: str, value: int) -> None:
    rng = gen.rng
    plant = None
    if rng.random() < gen.mismatch_rate:
        plants = ["exceeds", "asset"] + (["no-settlement-id"] if status == "refunded" else [])
        plant = rng.choice(plants)
    story.refund = gen.refund(story.payment, at, value, status, plant)
    story.refunded_at = at
