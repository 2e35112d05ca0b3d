"""Ebioro responses: map an HTTP status and body to data or a typed ``worker.errors`` exception.

Success is any 2xx with a JSON object body (the plugins accept 200 and 201), and that body is
the data. Failures are non-2xx with ``{"reason": "…", "statusCode": 400}`` (docs/gateways/ebioro.md
(E-ERR-1));
429 is undocumented but sent in practice, so it and 5xx are transient and honour ``Retry-After``.
"""

from __future__ import annotations

from worker.gateways.base.responses import ResponseRules

# ``statusCode`` repeats the HTTP status, so messages leave it out.
RESPONSES = ResponseRules(code="statusCode", message="reason")
