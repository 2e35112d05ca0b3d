"""The Aurpay sandbox over real HTTP: its four endpoints, both auth methods and ``/_admin/``.

``start_sandbox(config)`` builds the world, binds (port 0 picks a free port) and serves it on
the shared server loop (``worker.providers.sandboxkit.http``: latency, auth, faults, answer),
returning a ``RunningSandbox`` that also runs the callback sender.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from worker.providers.aurpay.sandbox import admin, api
from worker.providers.aurpay.sandbox.access import refusal
from worker.providers.aurpay.sandbox.callbacks import CallbackSender
from worker.providers.aurpay.sandbox.model import SandboxConfig
from worker.providers.aurpay.sandbox.world import World
from worker.providers.sandboxkit import http
from worker.providers.sandboxkit.faults import FaultRates
from worker.providers.sandboxkit.http import Reply

RunningSandbox = http.RunningSandbox[SandboxConfig, World]


class AurpayApp:
    """The Aurpay side of the shared server loop (``sandboxkit.http.SandboxApp``)."""

    provider = "aurpay"
    admin_prefix = admin.PREFIX

    def __init__(self, config: SandboxConfig, world: World) -> None:
        self.config = config
        self.world = world

    def faults(self) -> FaultRates:
        return self.world.faults()

    def is_endpoint(self, path: str) -> bool:
        return api.endpoint(path) is not None

    def refusal(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> str | None:
        return refusal(
            headers,
            method,
            target,
            body,
            self.config.credentials,
            sign_query=self.config.sign_query,
            max_skew_seconds=self.config.max_skew_seconds,
            now=now,
        )

    def answer(self, method: str, target: str) -> Reply:
        return api.answer(self.world, method, target)

    def admin(self, method: str, path: str, body: bytes) -> Reply:
        return admin.answer(self.world, method, path, body)

    def fail(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> Reply:
        return api.fail(status, reason, headers)


def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Build the world from ``config`` and serve it; raises ``OSError`` if the port is taken."""
    world = World(config)
    callbacks = CallbackSender(world, config.credentials)
    return RunningSandbox(config, world, AurpayApp(config, world), [callbacks]).start()
