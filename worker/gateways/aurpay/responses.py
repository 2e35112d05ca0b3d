"""Aurpay responses: map an HTTP status and the JSON envelope to data or a typed error.

The one place that decides what a response means (aurpay-api.md §1): success is HTTP 2xx and
``code == 0`` and ``result is true``; everything else becomes a ``worker.errors`` exception.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from worker.errors import BadResponse, ProviderError, Rejected
from worker.gateways.aurpay.payloads import SOURCE
from worker.gateways.base import parse_retry_after, read_json_object, status_error

__all__ = ["check_response", "parse_retry_after"]


def check_response(
    method: str,
    target: str,
    response: httpx.Response,
    now: datetime,
    redact: Callable[[str], str] = str,
) -> Any:
    """The envelope's ``data`` on success; otherwise raise the matching ``ProviderError``.

    Success is HTTP 2xx and ``code == 0`` and ``result is true`` (aurpay-api.md §1). Messages
    hold method, target, status, code and the provider's message only, never headers; ``redact``
    masks any credential the provider might echo back in its message.
    """
    status = response.status_code
    envelope, problem = read_json_object(response.content)
    code = envelope.get("code") if envelope is not None else None
    message = envelope.get("message") if envelope is not None else None
    message = message if isinstance(message, str) else None

    def error(cls: type[ProviderError], detail: str = "", retry_after: float | None = None) -> Any:
        text = f"aurpay {method} {target}: HTTP {status}"
        text += f", code {code}" if code is not None else ""
        text += f": {message}" if message else ""
        text += f" ({detail})" if detail else ""
        return cls(
            redact(text),
            source=SOURCE,
            status=status,
            code=code if isinstance(code, int | str) and not isinstance(code, bool) else None,
            provider_message=redact(message) if message else None,
            retry_after=retry_after,
        )

    failed, retry_after = status_error(status, response.headers, now)
    if failed is not None:
        raise error(failed, retry_after=retry_after)
    if envelope is None:
        raise error(BadResponse, problem)
    succeeded = type(code) is int and code == 0 and envelope.get("result") is True
    if not succeeded:
        raise error(Rejected, "envelope reports failure")
    return envelope.get("data")
