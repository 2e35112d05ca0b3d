"""A named, expiring lease so that only one process acts at a time (e.g. the scheduler).

Redis when ``REDIS_URL`` is set, otherwise a row in the ``sync_lease`` table. A holder renews
before ``ttl`` runs out; a holder that dies stops renewing, and another takes over at expiry.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger.storage.engine import read_only
from ledger.storage.sync_tables import SYNC_LEASE
from worker.config import Settings


def new_holder_id() -> str:
    """A holder name unique to this process and readable in logs: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Lease(Protocol):
    """One named lease. ``ttl`` is in seconds; every method is safe to call repeatedly."""

    def acquire(self, holder: str, ttl: float) -> bool:
        """Take the lease if it is free or expired (or extend it if ``holder`` has it)."""
        ...

    def renew(self, holder: str, ttl: float) -> bool:
        """Extend the lease; False if ``holder`` no longer has it."""
        ...

    def release(self, holder: str) -> None:
        """Give the lease up if ``holder`` has it; otherwise do nothing."""
        ...

    def current_holder(self) -> str | None: ...


# Compare-and-act scripts: only the holder may extend or delete its key.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLease:
    """A Redis key ``{namespace}:lease:{name}`` holding the holder's id, expiring by itself."""

    def __init__(self, client: redis.Redis, name: str, *, namespace: str = "tally") -> None:
        self._client = client
        self.key = f"{namespace}:lease:{name}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, holder: str, ttl: float) -> bool:
        if self._client.set(self.key, holder, nx=True, px=_millis(ttl)):
            return True
        return self.renew(holder, ttl)

    def renew(self, holder: str, ttl: float) -> bool:
        return bool(self._renew(keys=[self.key], args=[holder, _millis(ttl)]))

    def release(self, holder: str) -> None:
        self._release(keys=[self.key], args=[holder])

    def current_holder(self) -> str | None:
        value = self._client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class DbLease:
    """A row in ``sync_lease``; works on SQLite and PostgreSQL.

    Expiry compares timestamps from the callers' clocks, so hosts sharing a database need
    synchronised clocks (NTP); the ttl should dwarf any remaining skew.
    """

    def __init__(
        self, engine: Engine, name: str, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._engine = engine
        self.name = name
        self._clock = clock

    def acquire(self, holder: str, ttl: float) -> bool:
        now = self._clock().astimezone(UTC)
        expires = now + timedelta(seconds=ttl)
        row = SYNC_LEASE.c
        try:
            with self._engine.begin() as conn:
                # Take over our own or an expired row; on PostgreSQL a concurrent taker waits
                # for this row lock and then re-checks the condition, so only one wins.
                taken = conn.execute(
                    SYNC_LEASE.update()
                    .where(
                        row.name == self.name, sa.or_(row.holder == holder, row.expires_at < now)
                    )
                    .values(holder=holder, expires_at=expires)
                )
                if taken.rowcount == 1:
                    return True
                # No row yet, or a live one held by someone else: the primary key decides.
                conn.execute(
                    SYNC_LEASE.insert().values(name=self.name, holder=holder, expires_at=expires)
                )
                return True
        except IntegrityError:
            return False

    def renew(self, holder: str, ttl: float) -> bool:
        expires = self._clock().astimezone(UTC) + timedelta(seconds=ttl)
        row = SYNC_LEASE.c
        with self._engine.begin() as conn:
            renewed = conn.execute(
                SYNC_LEASE.update()
                .where(row.name == self.name, row.holder == holder)
                .values(expires_at=expires)
            )
            return renewed.rowcount == 1

    def release(self, holder: str) -> None:
        row = SYNC_LEASE.c
        with self._engine.begin() as conn:
            conn.execute(SYNC_LEASE.delete().where(row.name == self.name, row.holder == holder))

    def current_holder(self) -> str | None:
        now = self._clock().astimezone(UTC)
        row = SYNC_LEASE.c
        with read_only(self._engine).connect() as conn:
            return conn.execute(
                sa.select(row.holder).where(row.name == self.name, row.expires_at >= now)
            ).scalar_one_or_none()


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def lease_for(settings: Settings, client: redis.Redis | None, engine: Engine, name: str) -> Lease:
    """On the process's Redis client when it has one (``REDIS_URL``), the database otherwise."""
    if client is not None:
        return RedisLease(client, name, namespace=settings.redis_namespace)
    return DbLease(engine, name)
