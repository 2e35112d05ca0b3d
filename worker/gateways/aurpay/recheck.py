"""Which stored refund-infos a full scan fetches again: Aurpay corrects them without a trace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.base.records import parse_time


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RefundRecheck:
    """A refund-info can change while its order does not (the sandbox's ``PUT
    /_admin/refund-info`` imitates it), and no list shows it: only fetching it again does. A
    full scan therefore re-fetches the refund-info of every REFUNDED order it reads, or, with
    ``max_age``, of those refunded within it (``update_time``, which a refund moves, else
    ``create_time``; an order with neither counts as recent)."""

    max_age: timedelta | None = None  # None: every REFUNDED order
    naive_tz: tzinfo = UTC  # zone of Aurpay's zone-less timestamps
    clock: Callable[[], datetime] = field(default=_utc_now, compare=False)

    @classmethod
    def from_settings(cls, settings: AurpaySettings) -> RefundRecheck:
        days = settings.refund_recheck_max_age_days
        return cls(timedelta(days=days) if days else None, ZoneInfo(settings.naive_timezone))

    def wants(self, order: Mapping[str, Any]) -> bool:
        """Whether a full scan re-fetches this REFUNDED order's refund-info."""
        if self.max_age is None:
            return True
        since = _refunded_since(order, self.naive_tz)
        return since is None or self.clock() - since <= self.max_age


def _refunded_since(order: Mapping[str, Any], naive_tz: tzinfo) -> datetime | None:
    for name in ("update_time", "create_time"):
        value = order.get(name)
        if isinstance(value, str) and value:
            try:
                return parse_time(value, naive_tz)
            except ValueError:
                continue
    return None
