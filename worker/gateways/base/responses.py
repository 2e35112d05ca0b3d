"""What a response means, the part all gateways share: status → error, Retry-After, messages.

Each gateway's ``responses`` module names where its bodies carry their error code and message,
and adds its own success rule (e.g. Aurpay's envelope).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    TransientError,
    Unavailable,
)


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


def error_class(status: int) -> type[ProviderError] | None:
    """The error an HTTP status means on its own, or None for 2xx (the body decides)."""
    if status == 429:
        return RateLimited
    if status >= 500:
        return Unavailable
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if not 200 <= status < 300:
        return Rejected
    return None


def status_error(
    status: int, headers: httpx.Headers, now: datetime
) -> tuple[type[ProviderError] | None, float | None]:
    """(``error_class(status)``, the ``Retry-After`` hint when that error is transient)."""
    failed = error_class(status)
    if failed is None or not issubclass(failed, TransientError):
        return failed, None
    return failed, parse_retry_after(headers.get("Retry-After"), now)


def read_json_object(content: bytes) -> tuple[Mapping[str, Any] | None, str]:
    """(the body as a JSON object, "") or (None, why it is not one); numbers stay exact."""
    try:
        body = jsonx.loads(content)
    except jsonx.InvalidJSON as exc:
        return None, f"body is not JSON: {exc}"
    if not isinstance(body, Mapping):
        return None, "body is not a JSON object"
    return body, ""


@dataclass(frozen=True)
class Answer:
    """One response as far as an error about it goes: the request, the HTTP status and the
    provider's own code and message. ``redact`` masks credentials the provider echoed back."""

    source: str
    method: str
    target: str
    status: int
    code: Any  # as sent; only an integer or a string becomes the error's ``code``
    message: str | None
    code_in_text: bool
    redact: Callable[[str], str]

    def error(
        self, failure: type[ProviderError], detail: str = "", retry_after: float | None = None
    ) -> ProviderError:
        """The ``failure`` this answer means; its text never holds headers."""
        text = f"{self.source} {self.method} {self.target}: HTTP {self.status}"
        text += f", code {self.code}" if self.code_in_text and self.code is not None else ""
        text += f": {self.message}" if self.message else ""
        text += f" ({detail})" if detail else ""
        code = self.code
        return failure(
            self.redact(text),
            source=self.source,
            status=self.status,
            code=code if isinstance(code, int | str) and not isinstance(code, bool) else None,
            provider_message=self.redact(self.message) if self.message else None,
            retry_after=retry_after,
        )


def whole_body(body: Mapping[str, Any], answer: Answer) -> Mapping[str, Any]:
    """The data of a gateway whose 2xx JSON object is the data itself."""
    return body


@dataclass(frozen=True)
class ResponseRules:
    """How one gateway's responses read: where its JSON bodies carry its own error code and
    message, and ``data(body, answer)``, the data of a 2xx JSON object (which raises
    ``answer.error(...)`` when the body itself reports a failure)."""

    code: str  # field name
    message: str  # field name
    code_in_text: bool = False  # whether error messages show the code (not when it is the status)
    data: Callable[[Mapping[str, Any], Answer], Any] = whole_body

    def check(
        self,
        source: str,
        method: str,
        target: str,
        response: httpx.Response,
        now: datetime,
        redact: Callable[[str], str] = str,
    ) -> Any:
        """The data of a successful response; otherwise raise the ``ProviderError`` the status
        means, ``BadResponse`` for a body that is not a JSON object, or what ``data`` raises.
        Messages never hold headers; ``redact`` masks credentials the provider echoed back."""
        body, problem = read_json_object(response.content)
        fields = body if body is not None else {}
        message = fields.get(self.message)
        answer = Answer(
            source=source,
            method=method,
            target=target,
            status=response.status_code,
            code=fields.get(self.code),
            message=message if isinstance(message, str) else None,
            code_in_text=self.code_in_text,
            redact=redact,
        )
        failed, retry_after = status_error(response.status_code, response.headers, now)
        if failed is not None:
            raise answer.error(failed, retry_after=retry_after)
        if body is None:
            raise answer.error(BadResponse, problem)
        return self.data(body, answer)
