"""The four Ebioro read endpoints of the sandbox, answered from the world as the docs show them.

Success: HTTP 200 with the object itself (no envelope). Failure: ``{"reason", "statusCode"}``
with that HTTP status (docs/gateways/ebioro.md (E-ERR-1); the literal reasons are not documented).

- ``GET /payments`` and ``GET /refunds``: query ``page`` (1-based, default 1) and ``limit``
  (default 20; above 100 served as 100, undocumented behaviour); ``{"items": [...], "meta":
  {totalItems, itemCount, itemsPerPage, totalPages, currentPage}}`` with ``totalPages =
  ceil(totalItems / itemsPerPage)`` (0 when empty), newest first (payments by ``createdAt``,
  refunds by when they were made, then id; sort order is undocumented); a page past the end
  has no items. A non-numeric or non-positive ``page``/``limit`` is a 400.
- ``GET /payments/{id}`` (a payment) and ``GET /refunds/{id}`` (a refund with its embedded
  payment); unknown id → 404. Other paths → 404; other methods on these paths → 405.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.ebioro.model import DEFAULT_LIMIT
from sandbox.ebioro.world import World
from sandbox.kit.errors import SandboxError
from sandbox.kit.http import Reply

Handler = Callable[[World, str], Any]  # (world, query string) -> the answer's body


def ok(body: Any) -> Reply:
    return Reply(200, body)


def fail(status: int, reason: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"reason": reason, "statusCode": status}, dict(headers or {}))


def endpoint(path: str) -> Handler | None:
    """The handler for one of the four API paths, or None for any other path."""
    parts = path.strip("/").split("/")
    if len(parts) == 1 and parts[0] == "payments":
        return lambda world, query: world.payments_page(*_paging(query))
    if len(parts) == 1 and parts[0] == "refunds":
        return lambda world, query: world.refunds_page(*_paging(query))
    if len(parts) == 2 and parts[1]:
        subject = unquote(parts[1])
        if parts[0] == "payments":
            return lambda world, query: world.payment(subject)
        if parts[0] == "refunds":
            return lambda world, query: world.refund(subject)
    return None


def answer(world: World, method: str, target: str) -> Reply:
    """Answer one already-authenticated request for ``target`` (raw path and query)."""
    parts = urlsplit(target)
    handler = endpoint(parts.path)
    if handler is None:
        return fail(404, f"Cannot {method} {parts.path}")
    if method != "GET":
        return fail(405, f"{method} {parts.path} is not served by the sandbox")
    try:
        return ok(handler(world, parts.query))
    except SandboxError as exc:
        return fail(exc.status, str(exc))


def _paging(query: str) -> tuple[int, int]:
    params = parse_qs(query)
    try:
        page = int(params.get("page", ["1"])[-1])
        limit = int(params.get("limit", [str(DEFAULT_LIMIT)])[-1])
    except ValueError:
        raise SandboxError("page and limit must be positive integers") from None
    return page, limit
