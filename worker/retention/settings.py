"""Retention settings: how long bookkeeping rows and callback replay entries are kept.

Read apart from the core settings (like ``TALLY_RULES``), validated at startup: a bad value is
one line naming its variable. The ledger has no setting here: it is never pruned.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.storage.retention import Retention
from worker.accounts import config_error
from worker.alerts.sinks import REDELIVER_HORIZON

DAY = 86400


class RetentionSettings(BaseSettings):
    """``TALLY_RETENTION_*``: seconds each kind of record is kept, and how often to prune."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    # finished sync runs with their feeds and items (each source's newest 20 always stay)
    tally_retention_runs_seconds: int = Field(default=30 * DAY, ge=60)
    # scheduler ticks (each job's newest always stays)
    tally_retention_ticks_seconds: int = Field(default=2 * DAY, ge=60)
    # expired leases
    tally_retention_leases_seconds: int = Field(default=DAY, ge=60)
    # alert deliveries that succeeded; at least the outbox's redelivery horizon (7 days)
    tally_retention_deliveries_seconds: int = Field(
        default=30 * DAY, ge=int(REDELIVER_HORIZON.total_seconds())
    )
    # callback replay entries: a replay key is remembered at most this long (never less than
    # the gateway's own signature window, which the callbacks still enforce)
    tally_retention_replay_seconds: int = Field(default=DAY, ge=60)
    # entries of the in-memory replay cache (no Redis); the oldest go first beyond it
    tally_replay_cache_max_entries: int = Field(default=100_000, ge=100)
    tally_retention_prune_interval_seconds: int = Field(default=3600, ge=1)

    def retention(self) -> Retention:
        return Retention(
            runs=timedelta(seconds=self.tally_retention_runs_seconds),
            ticks=timedelta(seconds=self.tally_retention_ticks_seconds),
            leases=timedelta(seconds=self.tally_retention_leases_seconds),
            deliveries=timedelta(seconds=self.tally_retention_deliveries_seconds),
        )


def load_retention(**overrides: object) -> RetentionSettings:
    """The retention settings, or a one-line ``ConfigError`` naming the variable."""
    known = {k: v for k, v in overrides.items() if k in RetentionSettings.model_fields}
    try:
        return RetentionSettings(**known)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise config_error(exc) from None
