"""A local Ebioro over real HTTP, faithful to docs/gateways/ebioro.md, for tests, demo and
benchmarks.

``start_sandbox(EbioroSandboxConfig(...))`` serves a deterministic world built from a seed; the
world knows the truth it planted (``expected_mismatches()``, ``dust_cases()``,
``invalid_records()``). The rule ids are in ``truth``.
"""

from __future__ import annotations

from sandbox.ebioro.model import (
    Delivery,
    EbioroCredentials,
    EbioroSandboxConfig,
    WebhookTarget,
)
from sandbox.ebioro.server import RunningSandbox, start_sandbox
from sandbox.ebioro.webhooks import webhook_body
from sandbox.ebioro.world import UnknownObject, World
from sandbox.kit.errors import Conflict, SandboxError
from sandbox.kit.faults import FaultRates, InvalidRecord

__all__ = [
    "Conflict",
    "Delivery",
    "EbioroCredentials",
    "EbioroSandboxConfig",
    "FaultRates",
    "InvalidRecord",
    "RunningSandbox",
    "SandboxError",
    "UnknownObject",
    "WebhookTarget",
    "World",
    "start_sandbox",
    "webhook_body",
]
