"""Ebioro digest signatures for requests and webhooks: one recipe for the client and the sandbox.

Request (documented, docs/gateways/ebioro.md (E-SIGN-2))::

    X-Digest-Signature = hex(HMAC-SHA256(key=secret key, msg=path_with_query + timestamp
                                                              + METHOD + body))

with ``X-Digest-Key`` = the public key and ``X-Digest-Timestamp`` = Unix seconds; body is ""
for GET and, for POST, the compact JSON that is also sent. Webhook (documented,
docs/gateways/ebioro.md (E-HOOK-2))::

    X-WEBHOOK-AUTH = hex(HMAC-SHA256(key=secret key, msg=raw body))
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from ledger import jsonx
from worker.gateways.base.http import GatewayAuth

KEY_HEADER = "X-Digest-Key"
TIMESTAMP_HEADER = "X-Digest-Timestamp"
SIGNATURE_HEADER = "X-Digest-Signature"
WEBHOOK_HEADER = "X-WEBHOOK-AUTH"
MAX_SKEW_SECONDS = 300  # "±5 minute window" (docs/gateways/ebioro.md (E-SIGN-4))


def _text(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _hex_hmac(secret: str | SecretStr, message: bytes) -> str:
    return hmac.new(_text(secret).encode("utf-8"), message, hashlib.sha256).hexdigest()


def string_to_sign(path: str, timestamp: str, method: str, body: bytes = b"") -> bytes:
    """``path + timestamp + METHOD + body`` as UTF-8 bytes, no separators (docs/gateways/ebioro.md
    (E-SIGN-2))."""
    return path.encode("utf-8") + timestamp.encode("ascii") + method.upper().encode("ascii") + body


def sign_request(
    secret: str | SecretStr, path: str, timestamp: str, method: str, body: bytes = b""
) -> str:
    """``X-Digest-Signature`` for a request; ``path`` includes the query string, as on the wire."""
    return _hex_hmac(secret, string_to_sign(path, timestamp, method, body))


def unix_timestamp(now: datetime) -> str:
    """``X-Digest-Timestamp``: whole Unix seconds as a decimal string."""
    return str(int(now.timestamp()))


def digest_headers(
    public_key: str,
    secret: str | SecretStr,
    method: str,
    path: str,
    body: bytes = b"",
    now: datetime | None = None,
) -> dict[str, str]:
    """The three digest headers for one request."""
    timestamp = unix_timestamp(now or datetime.now(UTC))
    return {
        KEY_HEADER: public_key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign_request(secret, path, timestamp, method, body),
    }


def compact_body(obj: Any) -> bytes:
    """A POST body as ``JSON.stringify`` writes it: compact, key order kept, ``/`` and
    non-ASCII unescaped (docs/gateways/ebioro.md (E-SIGN-3)). Sign and send these same bytes."""
    return jsonx.dumps(obj).encode("utf-8")


def is_fresh(timestamp: str, now: datetime, max_skew_seconds: int = MAX_SKEW_SECONDS) -> bool:
    """True when ``timestamp`` (Unix seconds) is within ``max_skew_seconds`` of ``now``."""
    text = timestamp.strip()
    if not text.isdigit():
        return False
    return abs(int(text) - now.timestamp()) <= max_skew_seconds


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def sign_webhook(secret: str | SecretStr, raw_body: bytes) -> str:
    """``X-WEBHOOK-AUTH`` for a webhook body: hex HMAC-SHA256 of the exact bytes sent."""
    return _hex_hmac(secret, raw_body)


def verify_webhook(secret: str | SecretStr, raw_body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``X-WEBHOOK-AUTH``) signs ``raw_body`` with ``secret``.

    Over the raw bytes, as all three provider plugins do (the docs' ``JSON.stringify(req.body)``
    equals them only for compact JSON); compared in constant time. Hex is case-insensitive.
    The scheme has no timestamp or nonce: a valid signature proves origin, not freshness.
    """
    if not header or not _text(secret):
        return False
    return constant_time_equal(sign_webhook(secret, raw_body), header.strip().lower())


def webhook_payment_id(raw_body: bytes) -> str | None:
    """The payment id a webhook is about (``data.id``), or None when the body has none.

    Only the id is read: the body is never trusted, the payment is fetched again
    (docs/gateways/ebioro.md (E-HOOK-4)).
    """
    try:
        body = jsonx.loads(raw_body)
    except jsonx.InvalidJSON:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    payment_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(payment_id, str) and 0 < len(payment_id.strip()) <= 200:
        return payment_id.strip()
    return None


class DigestAuth(GatewayAuth):
    """Signs each request with exactly the path, query and body the server will see.

    The secret key stays a ``SecretStr`` until the moment of signing.
    """

    requires_request_body = True

    def __init__(
        self,
        public_key: str,
        secret_key: SecretStr,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._public_key = public_key
        self._secret_key = secret_key
        self._clock = clock or (lambda: datetime.now(UTC))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # raw_path is the encoded target as sent on the wire ("/payments?page=2&limit=50").
        path = request.url.raw_path.decode("ascii")
        headers = digest_headers(
            self._public_key, self._secret_key, request.method, path, request.content, self._clock()
        )
        request.headers.update(headers)
        yield request

    def secrets(self) -> tuple[SecretStr, ...]:
        return (self._secret_key,)

    def __repr__(self) -> str:
        return f"DigestAuth(public_key={self._public_key!r}, secret_key=***)"
