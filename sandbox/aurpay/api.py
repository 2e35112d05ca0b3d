"""The four Aurpay read endpoints of the sandbox, answered from the world in the real envelope.

Success: HTTP 200 ``{"code":0,"message":"ok","data":...,"result":true}``. Failure (the docs name
no error codes): HTTP status and ``code`` equal (400, 401, 404, 405, 429, 500), ``data`` null,
``result`` false, and a human ``message``.

- ``GET /api/v2/order/`` (also without the trailing slash) and ``GET /api/v2/tx``: query
  ``page`` (1-based, default 1) and ``size`` (default 10, capped at ``page_size_cap``);
  ``data = {page, size, total, max_page, data}`` with ``max_page = ceil(total / size)`` (0 when
  there is nothing), newest first by ``create_time`` then id; a page past ``max_page`` is empty.
  List items are the full 26-field order objects (a superset of the 15 fields documented).
- ``GET /api/v2/order/detail/{order_id}``: the order object; unknown id → 404.
- ``GET /api/v2/order/refund-info/{order_id}``: amounts as JSON numbers; unknown id, or an order
  that has no refund → 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.aurpay.world import World
from sandbox.kit.errors import SandboxError
from sandbox.kit.http import Reply

DEFAULT_PAGE_SIZE = 10
_DETAIL = "/api/v2/order/detail/"
_REFUND_INFO = "/api/v2/order/refund-info/"


def ok(data: Any) -> Reply:
    return Reply(200, {"code": 0, "message": "ok", "data": data, "result": True})


def fail(status: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    payload = {"code": status, "message": message, "data": None, "result": False}
    return Reply(status, payload, dict(headers or {}))


Handler = Callable[[World, str], Any]  # (world, query string) -> data


def endpoint(path: str) -> Handler | None:
    """The handler for one of the four API paths, or None for any other path."""
    if path in ("/api/v2/order/", "/api/v2/order"):
        return lambda world, query: world.orders_page(*_paging(query))
    if path in ("/api/v2/tx", "/api/v2/tx/"):
        return lambda world, query: world.transactions_page(*_paging(query))
    for prefix, read in ((_DETAIL, World.order), (_REFUND_INFO, World.refund_info)):
        subject = path.removeprefix(prefix)
        if path.startswith(prefix) and subject and "/" not in subject:
            return partial(_by_id, read, subject)
    return None


def answer(world: World, method: str, target: str) -> Reply:
    """Answer one already-authenticated request for ``target`` (raw path and query)."""
    parts = urlsplit(target)
    handler = endpoint(parts.path)
    if handler is None:
        return fail(404, "not found")
    if method != "GET":
        return fail(405, "method not allowed")
    try:
        return ok(handler(world, parts.query))
    except SandboxError as exc:
        return fail(exc.status, str(exc))


def _by_id(read: Callable[[World, str], Any], subject: str, world: World, query: str) -> Any:
    return read(world, subject)


def _paging(query: str) -> tuple[int, int]:
    params = parse_qs(query)
    try:
        page = int(params.get("page", ["1"])[-1])
        size = int(params.get("size", [str(DEFAULT_PAGE_SIZE)])[-1])
    except ValueError:
        raise SandboxError("page and size must be positive integers") from None
    return page, size
