"""The Ebioro sandbox's admin API: change the world while a sync runs. JSON in and out, no auth,
no faults. Answers are the result itself; errors are ``{"reason", "statusCode"}``.

===========================================  ===================================================
``GET  /_admin/truth``                       every payment and refund as listed (junk too),
                                             expected_mismatches, dust_cases, invalid_records,
                                             deliveries, faults and webhook
``POST /_admin/payments``                    add payments newer than all others → {payment_ids}
  {"count": n, "status": "open"|…}           (status optional: a random mix by default)
``POST /_admin/payments/{id}/pay``           pay an open/processing payment → the payment;
  {"amount_paid": cents, "mismatch": bool,   less than settlement_amount: underpaid; dust:
   "dust": bool}                             amount_received off by a float artifact
``POST /_admin/payments/{id}/settle``        settlement → processing or paid → the payment
  {"status": "paid"|"processing"}
``POST /_admin/payments/{id}/refund``        refund a paid payment → the refund;
  {"value": cents, "status": "refunded"|…,   mismatch: true|"exceeds"|"no-settlement-id"|
   "mismatch": false|…}                      "asset"
``PUT  /_admin/payments/{id}``               change payment fields silently, e.g.
                                             {"status": "refunded", "amount_received": 990}
``PUT  /_admin/refunds/{id}``                change refund fields, e.g. {"settlement_Id": null}
                                             or {"amount": {"value": 5}}; {"status":
                                             "refunded"} also sets a settlement_Id, and once
                                             the refunds cover amount_paid the payment is
                                             marked refunded (webhook)
``GET|PUT /_admin/faults``                   read / change rate_429, rate_500, rate_truncated,
                                             rate_invalid_record, latency_ms, retry_after_seconds
``GET|PUT /_admin/webhook``                  read / set {"url": "http://…" | null}
===========================================  ===================================================

Errors: 400 bad body, 404 unknown payment, refund or route, 409 a payment in the wrong state.
Pay, settle and refund post a ``transaction_updated`` webhook; added payments a
``transaction_created`` one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import Any

from sandbox.ebioro.api import fail, ok
from sandbox.ebioro.world import World
from sandbox.kit import admin as plumbing
from sandbox.kit.http import Reply

PREFIX = "/_admin/"


def answer(world: World, method: str, path: str, body: bytes) -> Reply:
    """Answer one admin request; ``path`` has no query string."""
    return plumbing.answer(PREFIX, method, path, body, partial(_route, world), fail)


def _route(world: World, method: str, route: tuple[str, ...], body: Mapping[str, Any]) -> Reply:
    match method, route:
        case "GET", ("truth",):
            return ok(world.truth())
        case "POST", ("payments",):
            ids = world.add_payments(body.get("count", 1), body.get("status"))
            return ok({"payment_ids": ids})
        case "POST", ("payments", payment_id, "pay"):
            paid, mismatch = body.get("amount_paid"), bool(body.get("mismatch", False))
            return ok(world.pay(payment_id, paid, mismatch, bool(body.get("dust", False))))
        case "POST", ("payments", payment_id, "settle"):
            return ok(world.settle(payment_id, body.get("status", "paid")))
        case "POST", ("payments", payment_id, "refund"):
            value, status = body.get("value"), body.get("status", "refunded")
            return ok(world.refund_payment(payment_id, value, status, body.get("mismatch")))
        case "PUT", ("payments", payment_id):
            return ok(world.update_payment(payment_id, body))
        case "PUT", ("refunds", refund_id):
            return ok(world.update_refund(refund_id, body))
        case "GET", ("faults",):
            return ok(world.faults().as_json())
        case "PUT", ("faults",):
            return ok(world.set_faults(**body).as_json())
        case "GET", ("webhook",):
            target = world.webhook_target()
            return ok(asdict(target) if target else None)
        case "PUT", ("webhook",):
            target = world.set_webhook(body.get("url"))
            return ok(asdict(target) if target else None)
    return fail(404, f"no admin route {method} {PREFIX}{'/'.join(route)}")
