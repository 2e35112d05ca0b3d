"""The sandboxes a chaos scenario syncs from (one Aurpay, one Ebioro): seeded configs, the
environment and settings that point tally at them, calm for the clean run, and their truth.
``UpstreamTally`` counts the requests they served and the faults they injected.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

from sandbox.aurpay import RunningSandbox, SandboxConfig
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.server import RunningSandbox as EbioroSandbox
from tests.chaos.judge import Expected, aurpay_truth, ebioro_truth
from tests.chaos.report import ScenarioRecord
from tests.helpers.sandbox import UNPACED_RPS, sandbox_env
from worker.config import Settings, load_settings
from worker.gateways.aurpay.settings import SANDBOX_API_KEY
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY, SANDBOX_SECRET_KEY


def standard_world(**transport: Any) -> tuple[SandboxConfig, EbioroSandboxConfig]:
    """The world of the scenarios that leave the data alone (so one clean run serves them all):
    200 orders and 80 payments; ``transport`` (latency, fault rates) applies to both."""
    return (
        SandboxConfig(seed=11, orders=200, **transport),
        EbioroSandboxConfig(seed=12, payments=80, **transport),
    )


@dataclass
class Upstream:
    """The two running sandboxes."""

    aurpay: RunningSandbox
    ebioro: EbioroSandbox

    def env(self, database_url: str, **overrides: Any) -> dict[str, str]:
        """Environment for a ``tally`` process syncing both into ``database_url``."""
        env = sandbox_env(self.aurpay, database_url)
        env |= {
            "EBIORO_BASE_URL": self.ebioro.base_url,
            "EBIORO_PUBLIC_KEY": SANDBOX_PUBLIC_KEY,
            "EBIORO_SECRET_KEY": SANDBOX_SECRET_KEY,
            "EBIORO_REQUESTS_PER_SECOND": str(UNPACED_RPS),
        }
        env.update({k.upper(): str(v) for k, v in overrides.items()})
        return env

    def settings(self, database_url: str) -> Settings:
        """In-process settings for a clean run of both."""
        return load_settings(
            database_url=database_url,
            aurpay_base_url=self.aurpay.base_url,
            aurpay_api_key=SANDBOX_API_KEY,
            aurpay_requests_per_second=UNPACED_RPS,
            ebioro_base_url=self.ebioro.base_url,
            ebioro_public_key=SANDBOX_PUBLIC_KEY,
            ebioro_secret_key=SANDBOX_SECRET_KEY,
            ebioro_requests_per_second=UNPACED_RPS,
        )

    def calm(self) -> None:
        """No more faults or latency (for the clean run)."""
        for world in (self.aurpay.world, self.ebioro.world):
            world.set_faults(latency_ms=0, rate_429=0, rate_500=0, rate_truncated=0)

    def expected(self) -> Expected:
        """The truth as the sandboxes know it now."""
        expected = Expected()
        aurpay_truth(self.aurpay.world, expected)
        ebioro_truth(self.ebioro.world, expected)
        return expected


class UpstreamTally:
    """structlog processor: count the sandboxes' API requests and the faults they injected, and
    drop those lines (a chaos run makes thousands)."""

    def __init__(self, record: ScenarioRecord) -> None:
        self.record = record
        self.counting = True  # off for the clean run: the figures are the chaos run's

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self.counting:
            if method == "debug":  # the clean run's request lines
                raise structlog.DropEvent
            return event
        if event.get("event") != "sandbox_request":
            return event
        provider = str(event.get("provider"))
        self.record.requests[provider] += 1
        if event.get("fault"):
            self.record.fault(f"{provider} {event['fault']}")
        raise structlog.DropEvent
