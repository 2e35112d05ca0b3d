"""Aurpay request and callback signatures: one recipe shared by the client and the sandbox.

Request (third-party recipe, see docs/gateways/aurpay.md (A-SIGN-3, A-SIGN-4))::

    origin    = "HMAC-SHA256 | {Date} | {METHOD} {path}" [+ " | {Body-MD5}" when there is a body]
    Signature = base64(HMAC-SHA256(key=API secret, msg=origin))

Callback (documented, docs/gateways/aurpay.md (A-CB-5))::

    Signature = base64(HMAC-SHA256(key=callback secret, msg="{Date} | {full callback URL}"))

``ApiKeyAuth`` and ``SignatureAuth`` apply either method to outgoing ``httpx`` requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from worker.gateways.base.http import GatewayAuth

ALGORITHM = "HMAC-SHA256"


def iso_now(now: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as JavaScript's ``toISOString()`` writes it."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def body_md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def _b64_hmac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signing_path(raw_path: str, sign_query: bool) -> str:
    """The ``{path}`` part: the request target with or without its query string."""
    return raw_path if sign_query else raw_path.split("?", 1)[0]


def request_origin(date: str, method: str, path: str, md5: str | None) -> str:
    origin = f"{ALGORITHM} | {date} | {method.upper()} {path}"
    return f"{origin} | {md5}" if md5 else origin


def sign_request(secret: str, date: str, method: str, path: str, body: bytes = b"") -> str:
    """``Signature`` header for a request; ``path`` is exactly what is signed."""
    md5 = body_md5(body) if body else None
    return _b64_hmac(secret, request_origin(date, method, path, md5))


def signature_headers(
    token: str,
    secret: str,
    method: str,
    raw_path: str,
    body: bytes,
    sign_query: bool,
    now: datetime | None = None,
) -> dict[str, str]:
    """The full header set of the signature method for one request."""
    date = iso_now(now)
    headers = {"API-Token": token, "Algorithm": ALGORITHM, "Date": date}
    if body:
        headers["Body-MD5"] = body_md5(body)
    headers["Signature"] = sign_request(
        secret, date, method, signing_path(raw_path, sign_query), body
    )
    return headers


def sign_callback(secret: str, date: str, url: str) -> str:
    """``Signature`` header Aurpay sends to a callback URL."""
    return _b64_hmac(secret, f"{date} | {url}")


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def parse_date(value: str) -> datetime | None:
    """Parse an ISO-8601 ``Date`` header; a value with no zone is read as UTC. None if invalid."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_fresh(date: str, now: datetime, max_skew_seconds: int) -> bool:
    parsed = parse_date(date)
    return parsed is not None and abs((now - parsed).total_seconds()) <= max_skew_seconds


def url_path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class ApiKeyAuth(GatewayAuth):
    """The documented ``API-Key`` header. The key stays a ``SecretStr`` until the request."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["API-Key"] = self._api_key.get_secret_value()
        yield request

    def secrets(self) -> tuple[SecretStr, ...]:
        return (self._api_key,)

    def __repr__(self) -> str:
        return "ApiKeyAuth(api_key=***)"


class SignatureAuth(GatewayAuth):
    """The signature header set, signing exactly the request target the server will see."""

    requires_request_body = True

    def __init__(
        self,
        token: SecretStr,
        secret: SecretStr,
        *,
        sign_query: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._token = token
        self._secret = secret
        self._sign_query = sign_query
        self._clock = clock or (lambda: datetime.now(UTC))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # raw_path is the encoded target as sent on the wire ("/api/v2/order/?page=1&size=10").
        headers = signature_headers(
            self._token.get_secret_value(),
            self._secret.get_secret_value(),
            request.method,
            request.url.raw_path.decode("ascii"),
            request.content,
            self._sign_query,
            now=self._clock(),
        )
        request.headers.update(headers)
        yield request

    def secrets(self) -> tuple[SecretStr, ...]:
        return (self._token, self._secret)

    def __repr__(self) -> str:
        return f"SignatureAuth(token=***, secret=***, sign_query={self._sign_query})"
