"""The Aurpay sandbox over real HTTP: its four endpoints, both auth methods and ``/_admin/``.

``start_sandbox(config)`` builds the world, binds (port 0 picks a free port) and serves it on
the shared server loop (``sandbox.kit.http``: latency, auth, faults, answer),
returning a ``RunningSandbox`` that also runs the callback sender.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial

from sandbox.aurpay import admin, api
from sandbox.aurpay.access import refusal
from sandbox.aurpay.callbacks import CallbackSender
from sandbox.aurpay.model import SandboxConfig
from sandbox.aurpay.world import World
from sandbox.kit import http

RunningSandbox = http.RunningSandbox[SandboxConfig, World]


def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Build the world from ``config`` and serve it; raises ``OSError`` if the port is taken."""
    world = World(config)
    app = http.SandboxApp(
        provider="aurpay",
        admin_prefix=admin.PREFIX,
        faults=world.faults,
        is_endpoint=lambda path: api.endpoint(path) is not None,
        refusal=partial(_refusal, config),
        answer=partial(api.answer, world),
        admin=partial(admin.answer, world),
        fail=api.fail,
    )
    return RunningSandbox(config, world, app, [CallbackSender(world, config.credentials)]).start()


def _refusal(
    config: SandboxConfig,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> str | None:
    return refusal(
        headers,
        method,
        target,
        body,
        config.credentials,
        sign_query=config.sign_query,
        max_skew_seconds=config.max_skew_seconds,
        now=now,
    )
