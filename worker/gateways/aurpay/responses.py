"""Aurpay responses: map an HTTP status and the JSON envelope to data or a typed error.

The one place that decides what a response means (docs/gateways/aurpay.md (A-ENV-2)): success is
HTTP 2xx and
``code == 0`` and ``result is true``; everything else becomes a ``worker.errors`` exception
whose message shows the envelope's ``code`` and ``message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.errors import Rejected
from worker.gateways.base.responses import Answer, ResponseRules


def envelope_data(envelope: Mapping[str, Any], answer: Answer) -> Any:
    """The envelope's ``data`` when it reports success; ``Rejected`` when it does not."""
    code = envelope.get("code")
    if not (type(code) is int and code == 0 and envelope.get("result") is True):
        raise answer.error(Rejected, "envelope reports failure")
    return envelope.get("data")


RESPONSES = ResponseRules(code="code", message="message", code_in_text=True, data=envelope_data)
