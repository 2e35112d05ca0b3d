"""PostgreSQL unreachable for a few seconds mid-sync: a TCP proxy of the test's own sits between
a deployment (``tally worker`` + ``tally scheduler`` on Redis) and the shared server, and resets
every connection and refuses new ones for a while; the server itself keeps running. tally must
ride it out (retries) and converge with nothing lost or duplicated.
"""

from __future__ import annotations

from contextlib import closing
from urllib.parse import urlsplit

import pytest

from ledger.storage.engine import upgrade
from tests.chaos.harness import Scenario
from tests.chaos.infra import TcpProxy
from tests.chaos.upstream import standard_world

pytestmark = [pytest.mark.chaos]

CUT_AT_REFUNDS = 0.3
OUTAGE_SECONDS = 5.0
CONVERGE_SECONDS = 60  # messages failing in the outage retry with backoff (0.5 s, 1 s, 2 s, …)


def test_postgres_unreachable_for_5_seconds_mid_sync(
    scenario: Scenario, pg_url: str, redis_namespace: tuple[str, str]
) -> None:
    upstream = scenario.upstream(standard_world(latency_ms=40))
    upgrade(pg_url)
    server = urlsplit(pg_url)
    assert server.hostname == "127.0.0.1", "the proxy only reaches a local PostgreSQL"
    proxy = scenario.resources.enter_context(closing(TcpProxy(server.port or 5432)))
    netloc = server.netloc.rsplit(":", 1)[0] if server.port else server.netloc
    through_proxy = server._replace(netloc=f"{netloc}:{proxy.port}").geturl()
    env = scenario.deployment_env(upstream, through_proxy, *redis_namespace)

    scenario.start("worker", "scheduler", env=env)
    point = scenario.until_stored(scenario.probe(pg_url), upstream, "refund", CUT_AT_REFUNDS)
    proxy.outage(OUTAGE_SECONDS)
    scenario.fault(
        f"postgres unreachable {OUTAGE_SECONDS:g}s at {point}: {proxy.dropped} connections "
        f"reset, {proxy.refused} refused"
    )

    scenario.converge(pg_url, upstream.expected, CONVERGE_SECONDS)
    scenario.conclude(pg_url, upstream, upstream.expected())
