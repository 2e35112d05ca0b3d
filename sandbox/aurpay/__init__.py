"""A local Aurpay over real HTTP, faithful to docs/gateways/aurpay.md, for tests, demo and
benchmarks.

``start_sandbox(SandboxConfig(...))`` serves a deterministic world built from a seed; the world
knows the truth it planted (``expected_mismatches()``, ``dust_cases()``, ``invalid_records()``).
"""

from __future__ import annotations

from sandbox.aurpay.model import (
    CallbackTarget,
    Delivery,
    SandboxConfig,
    SandboxCredentials,
)
from sandbox.aurpay.server import RunningSandbox, start_sandbox
from sandbox.aurpay.world import UnknownOrder, World
from sandbox.kit.errors import Conflict, SandboxError
from sandbox.kit.faults import FaultRates, InvalidRecord

__all__ = [
    "CallbackTarget",
    "Conflict",
    "Delivery",
    "FaultRates",
    "InvalidRecord",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxCredentials",
    "SandboxError",
    "UnknownOrder",
    "World",
    "start_sandbox",
]
