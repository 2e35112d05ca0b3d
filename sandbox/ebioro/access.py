"""Digest authentication for the sandbox, verified with the client's own recipe (ebioro/auth.py).

``X-Digest-Key`` must equal the public key; ``X-Digest-Timestamp`` (Unix seconds) must be within
``max_skew_seconds`` of now, either way; ``X-Digest-Signature`` = hex HMAC-SHA256(secret key,
raw request target + timestamp + METHOD + body). For a JSON body the server's own re-serialised
form (``JSON.stringify(JSON.parse(body))``, docs/gateways/ebioro.md (E-SIGN-3), inferred) is
accepted as well as
the raw bytes. Comparisons are constant-time; the reasons returned (the doc's four 401 causes)
never contain a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ledger import jsonx
from sandbox.ebioro.model import EbioroCredentials
from worker.gateways.ebioro.auth import compact_body, constant_time_equal, is_fresh, sign_request


def refusal(
    credentials: EbioroCredentials,
    max_skew_seconds: int,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> str | None:
    """Why the request is refused, or None when it is authenticated. ``headers`` keys are
    lower-case; ``target`` is the raw request target (path and query as sent)."""
    key = headers.get("x-digest-key", "")
    timestamp = headers.get("x-digest-timestamp", "")
    signature = headers.get("x-digest-signature", "")
    if not (key and timestamp and signature):
        return "Missing header values"
    if not constant_time_equal(key, credentials.public_key):
        return "Invalid public key"
    if not is_fresh(timestamp, now, max_skew_seconds):
        return "Request timed out"
    given, secret = signature.strip().lower(), credentials.secret_key
    expected = [sign_request(secret, target, timestamp, method, b) for b in _signed_bodies(body)]
    matches = [constant_time_equal(given, candidate) for candidate in expected]
    return None if any(matches) else "Signature verification failed"


def _signed_bodies(body: bytes) -> list[bytes]:
    """The raw body, and its compact re-serialisation when that differs."""
    if not body.strip():
        return [body]
    try:
        compact = compact_body(jsonx.loads(body))
    except jsonx.InvalidJSON:
        return [body]
    return [body] if compact == body else [body, compact]
