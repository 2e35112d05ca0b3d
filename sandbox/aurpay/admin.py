"""The sandbox's admin API: change the world while a sync runs. JSON in and out, no auth, no faults.

Answers use the Aurpay envelope (``data`` holds the result; errors carry ``result: false``).

==========================================  ===================================================
``GET  /_admin/truth``                      every order, transaction and refund-info, plus
                                            expected_mismatches, dust_cases, invalid_records,
                                            deliveries, faults and callbacks
``POST /_admin/orders``  {"count": n}       add n orders newer than all others → {order_ids}
``POST /_admin/orders/raw`` {"order": any}  list any JSON value verbatim in the orders feed, at
                                            its create_time (else as the newest) → {listed: n}
``POST /_admin/orders/{id}/pay``            pay an unpaid order → the order; body optional:
  {"mismatch": false|true|"order"|...}      plant a mismatch (true = "transaction")
``POST /_admin/orders/{id}/refund``         refund a paid order (REFUNDED, update_time moves,
  {"mismatch": false|true}                  refund-info appears) → the refund-info
``PUT  /_admin/refund-info/{id}``           change refund-info fields, e.g. {"obtained": "1.5"}
                                            (the order itself does not change)
``GET|PUT /_admin/faults``                  read / change rate_429, rate_500, rate_truncated,
                                            rate_invalid_record, latency_ms, retry_after_seconds
``GET|PUT /_admin/callbacks``               read / set {"url": "http://…" | null,
                                            "method": "GET" | "POST"}
==========================================  ===================================================

Errors: 400 bad body, 404 unknown order or route, 409 an order in the wrong state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import Any

from sandbox.aurpay.api import fail, ok
from sandbox.aurpay.world import World
from sandbox.kit import admin as plumbing
from sandbox.kit.http import Reply

PREFIX = "/_admin/"


def answer(world: World, method: str, path: str, body: bytes) -> Reply:
    """Answer one admin request; ``path`` has no query string."""
    route = partial(_route, world)
    return plumbing.answer(PREFIX, method, path, body, route, fail)


def _route(world: World, method: str, route: tuple[str, ...], body: Mapping[str, Any]) -> Reply:
    match method, route:
        case "GET", ("truth",):
            return ok(world.truth())
        case "POST", ("orders",):
            return ok({"order_ids": world.add_orders(body.get("count", 1))})
        case "POST", ("orders", "raw"):
            if "order" not in body:
                return fail(400, 'the body must be {"order": <the list item, verbatim>}')
            world.add_raw_order(body["order"])
            return ok({"listed": len(world.raw_orders())})
        case "POST", ("orders", order_id, "pay"):
            return ok(world.pay(order_id, body.get("mismatch", False)))
        case "POST", ("orders", order_id, "refund"):
            return ok(world.refund(order_id, bool(body.get("mismatch", False))))
        case "PUT", ("refund-info", order_id):
            return ok(world.update_refund_info(order_id, body))
        case "GET", ("faults",):
            return ok(world.faults().as_json())
        case "PUT", ("faults",):
            return ok(world.set_faults(**body).as_json())
        case "GET", ("callbacks",):
            target = world.callback_target()
            return ok(asdict(target) if target else None)
        case "PUT", ("callbacks",):
            target = world.set_callbacks(body.get("url"), body.get("method", "GET"))
            return ok(asdict(target) if target else None)
    return fail(404, f"no admin route {method} {PREFIX}{'/'.join(route)}")
