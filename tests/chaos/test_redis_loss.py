"""Redis restarted EMPTY mid-sync under a deployment (``tally worker`` + ``tally scheduler`` on
PostgreSQL): queued and unacknowledged messages, the scheduler's lease and the limiters' keys
vanish at once. The test runs a redis-server of its own on a free port (never the shared one),
kills it and starts a fresh one on the same port; tally must converge all the same.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger.storage.engine import upgrade
from tests.chaos.harness import Scenario
from tests.chaos.infra import RedisServer
from tests.chaos.upstream import standard_world

pytestmark = [pytest.mark.chaos]

LOSE_AT_REFUNDS = 0.3
DOWN_SECONDS = 1.0  # long enough for every client to meet a refused connection
# Lost follow-ups are only sent again a minute after they were first sent (recovery's resend
# backoff, not a setting), lost pages once their run has been idle for 15 s.
CONVERGE_SECONDS = 90


def test_redis_killed_mid_sync_and_restarted_empty_on_the_same_port(
    scenario: Scenario, pg_url: str, tmp_path: Path
) -> None:
    upstream = scenario.upstream(standard_world(latency_ms=40))
    redis_server = scenario.resources.enter_context(RedisServer(tmp_path))
    upgrade(pg_url)
    env = scenario.deployment_env(upstream, pg_url, redis_server.url, "tally-chaos")

    scenario.start("worker", "scheduler", env=env)
    point = scenario.until_stored(scenario.probe(pg_url), upstream, "refund", LOSE_AT_REFUNDS)
    scenario.kill(redis_server, point)
    time.sleep(DOWN_SECONDS)
    redis_server.start()
    scenario.fault(f"redis restarted empty after {DOWN_SECONDS:g}s down")

    scenario.converge(pg_url, upstream.expected, CONVERGE_SECONDS)
    scenario.conclude(pg_url, upstream, upstream.expected())
