"""Ebioro responses: map an HTTP status and body to data or a typed ``worker.errors`` exception.

Success is any 2xx with a JSON object body (the plugins accept 200 and 201). Failures are
non-2xx with ``{"reason": "…", "statusCode": 400}`` (ebioro-api.md §7); 429 is undocumented
but sent in practice, so it and 5xx are transient and honour ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from worker.errors import BadResponse, ProviderError
from worker.gateways.base import read_json_object, status_error
from worker.gateways.ebioro.payloads import SOURCE


def check_response(
    method: str,
    target: str,
    response: httpx.Response,
    now: datetime,
    redact: Callable[[str], str] = str,
) -> Mapping[str, Any]:
    """The body on success; otherwise raise the matching ``ProviderError``.

    Messages hold method, target, status and the provider's ``reason`` only, never headers;
    ``redact`` masks any credential the provider might echo back.
    """
    status = response.status_code
    body, problem = read_json_object(response.content)
    reason = body.get("reason") if body is not None else None
    reason = reason if isinstance(reason, str) else None
    code = body.get("statusCode") if body is not None else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None

    def error(cls: type[ProviderError], detail: str = "", retry_after: float | None = None) -> Any:
        text = f"ebioro {method} {target}: HTTP {status}"
        text += f": {reason}" if reason else ""
        text += f" ({detail})" if detail else ""
        return cls(
            redact(text),
            source=SOURCE,
            status=status,
            code=code,
            provider_message=redact(reason) if reason else None,
            retry_after=retry_after,
        )

    failed, retry_after = status_error(status, response.headers, now)
    if failed is not None:
        raise error(failed, retry_after=retry_after)
    if body is None:
        raise error(BadResponse, problem)
    return body
