"""The Ebioro sandbox over real HTTP: its four read endpoints, digest auth and ``/_admin/``.

``start_sandbox(EbioroSandboxConfig(...))`` builds the world, binds (port 0 picks a free port)
and serves it on the shared server loop (``sandbox.kit.http``: latency, auth,
faults, answer), returning a ``RunningSandbox`` that also runs the webhook sender.
"""

from __future__ import annotations

from functools import partial

from sandbox.ebioro import admin, api
from sandbox.ebioro.access import refusal
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.webhooks import WebhookSender
from sandbox.ebioro.world import World
from sandbox.kit import http

RunningSandbox = http.RunningSandbox[EbioroSandboxConfig, World]


def start_sandbox(config: EbioroSandboxConfig) -> RunningSandbox:
    """Build the world from ``config`` and serve it; raises ``OSError`` if the port is taken."""
    world = World(config)
    app = http.SandboxApp(
        provider="ebioro",
        admin_prefix=admin.PREFIX,
        faults=world.faults,
        is_endpoint=lambda path: api.endpoint(path) is not None,
        refusal=partial(refusal, config.credentials, config.max_skew_seconds),
        answer=partial(api.answer, world),
        admin=partial(admin.answer, world),
        fail=api.fail,
    )
    return RunningSandbox(config, world, app, [WebhookSender(world, config.credentials)]).start()
