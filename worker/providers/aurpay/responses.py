"""Aurpay responses: map an HTTP status and the JSON envelope to data or a typed error.

The one place that decides what a response means (aurpay-api.md §1): success is HTTP 2xx and
``code == 0`` and ``result is true``; everything else becomes a ``worker.errors`` exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ledger import jsonx
from worker.errors import (
    AuthError,
    BadResponse,
    NotFound,
    ProviderError,
    RateLimited,
    Rejected,
    Unavailable,
)
from worker.providers.aurpay.payloads import SOURCE


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _read_envelope(content: bytes) -> tuple[Mapping[str, Any] | None, str]:
    try:
        body = jsonx.loads(content)
    except jsonx.InvalidJSON as exc:
        return None, f"body is not JSON: {exc}"
    if not isinstance(body, Mapping):
        return None, "body is not a JSON object"
    return body, ""


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
    envelope, problem = _read_envelope(response.content)
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

    retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    if status == 429:
        raise error(RateLimited, retry_after=retry_after)
    if status >= 500:
        raise error(Unavailable, retry_after=retry_after)
    if status in (401, 403):
        raise error(AuthError)
    if status == 404:
        raise error(NotFound)
    if not 200 <= status < 300:
        raise error(Rejected)
    if envelope is None:
        raise error(BadResponse, problem)
    succeeded = type(code) is int and code == 0 and envelope.get("result") is True
    if not succeeded:
        raise error(Rejected, "envelope reports failure")
    return envelope.get("data")
