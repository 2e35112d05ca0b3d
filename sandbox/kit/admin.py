"""Admin-request plumbing shared by the sandboxes: parse the JSON body, split the route, map
refusals (``SandboxError``) to the provider's error envelope. Routes themselves are per provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ledger import jsonx
from sandbox.kit.errors import SandboxError
from sandbox.kit.http import Reply

Route = Callable[[str, tuple[str, ...], Mapping[str, Any]], Reply]  # (method, parts, body)
Fail = Callable[[int, str], Reply]


def answer(prefix: str, method: str, path: str, body: bytes, route: Route, fail: Fail) -> Reply:
    """Answer one admin request; ``path`` has no query string and starts with ``prefix``."""
    try:
        payload = jsonx.loads(body) if body.strip() else {}
    except jsonx.InvalidJSON as exc:
        return fail(400, str(exc))
    if not isinstance(payload, Mapping):
        return fail(400, "the body must be a JSON object")
    parts = tuple(path.removeprefix(prefix).strip("/").split("/"))
    try:
        return route(method, parts, payload)
    except SandboxError as exc:
        return fail(exc.status, str(exc))
