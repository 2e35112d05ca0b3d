"""The Ebioro webhook route on a real callbacks server, shared by the webhook and hostile-request
tests: (server, ids of the payments it enqueued)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.config import load_settings
from worker.gateways.contract import FollowUp
from worker.inbound.replay import MemoryReplayCache
from worker.inbound.server import CallbackServer

EBIORO_SECRET = "sk_test_webhook_secret"
WEBHOOK_PATH = "/callbacks/ebioro"


@pytest.fixture
def server() -> Iterator[tuple[CallbackServer, list[str]]]:
    settings = load_settings(
        ebioro_public_key="pk_test_x",
        ebioro_secret_key=EBIORO_SECRET,
        ebioro_base_url="https://test-merchant.ebioro.com",
    )
    enqueued: list[str] = []

    def enqueue(source: str, refetch: FollowUp) -> None:
        assert (source, refetch.kind) == ("ebioro", "payment")
        enqueued.append(refetch.external_id)

    srv = CallbackServer(settings, enqueue, MemoryReplayCache(), "127.0.0.1", 0)
    srv.start()
    try:
        yield srv, enqueued
    finally:
        srv.stop()
