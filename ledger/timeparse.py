"""Provider timestamps to timezone-aware UTC: naive ISO-8601 strings are read as UTC.

Aurpay sends naive timestamps ("2025-02-06T00:00:00") and does not document a zone; UTC is the
only reading that needs no guess about the merchant's locale. Parsing never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime, or None when absent or unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:59:59-05:00 in UTC
        return None


def first_timestamp(payload: Mapping[str, Any], *fields: str) -> datetime | None:
    """The first of ``fields`` in ``payload`` that parses as a timestamp, in UTC."""
    for name in fields:
        parsed = parse_timestamp(payload.get(name))
        if parsed is not None:
            return parsed
    return None
