"""Request authentication for the sandbox: both Aurpay methods, verified exactly as auth.py signs.

- ``API-Key: <key>`` equal to the configured key; or
- ``API-Token`` + ``Algorithm: HMAC-SHA256`` + ``Date`` (within ``max_skew_seconds``) +
  ``Signature`` (+ ``Body-MD5`` when there is a body), where the signed path is the raw request
  target, with its query string when ``sign_query`` (the setting AURPAY_SIGN_QUERY).

Every secret comparison is constant-time; the reasons returned never contain a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sandbox.aurpay.model import SandboxCredentials
from worker.gateways.aurpay.auth import (
    ALGORITHM,
    body_md5,
    constant_time_equal,
    is_fresh,
    sign_request,
    signing_path,
)


def refusal(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    credentials: SandboxCredentials,
    *,
    sign_query: bool,
    max_skew_seconds: int,
    now: datetime,
) -> str | None:
    """Why the request is refused, or None when it is authenticated. ``headers`` keys are
    lower-case; ``target`` is the raw request target (path and query as sent)."""
    api_key = headers.get("api-key")
    if api_key is not None:
        return None if constant_time_equal(api_key, credentials.api_key) else "invalid API-Key"
    token = headers.get("api-token")
    if token is None:
        return "missing credentials: send API-Key or the signature headers"
    if not constant_time_equal(token, credentials.api_token):
        return "invalid API-Token"
    if headers.get("algorithm") != ALGORITHM:
        return f"Algorithm must be {ALGORITHM}"
    date = headers.get("date", "")
    if not is_fresh(date, now, max_skew_seconds):
        return f"Date is missing, unparsable or more than {max_skew_seconds} s off"
    if body and not constant_time_equal(headers.get("body-md5", ""), body_md5(body)):
        return "Body-MD5 does not match the body"
    path = signing_path(target, sign_query)
    expected = sign_request(credentials.api_secret, date, method, path, body)
    if not constant_time_equal(headers.get("signature", ""), expected):
        return "invalid Signature"
    return None
