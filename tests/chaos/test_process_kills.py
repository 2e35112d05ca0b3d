"""``kill -9`` of tally mid-sync, then a restart: the all-in-one ``tally run`` (SQLite, in-process
broker) and a deployment's ``tally worker`` + ``tally scheduler`` (PostgreSQL, Redis). Restarted,
tally must converge to the sandboxes' truth with nothing lost, duplicated or falsely alerted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.storage.engine import upgrade
from tests.chaos.harness import Scenario
from tests.chaos.upstream import standard_world

pytestmark = [pytest.mark.chaos]

KILL_AT_REFUNDS = 0.3  # tally run: most pages read, their refund-infos being fetched
KILL_AT_ORDERS = 0.4  # the deployment: order pages still fanning out
LATENCY_MS = 40  # every request takes this long upstream: work is in flight at the kill
# The target is 3 minutes at the default intervals. A restarted `tally run` first waits
# for the killed scheduler's lease to expire (30 s, not a setting), then syncs every 3 s.
CONVERGE_SECONDS = 60
# A deployment also waits for the scheduler's minute job to hand the dead worker's messages
# back, and for the dead worker's concurrency slots to expire (60 s leases).
DEPLOYMENT_CONVERGE_SECONDS = 90


def test_kill_9_of_tally_run_at_30_percent_of_refund_infos_then_restart(
    scenario: Scenario, tmp_path: Path
) -> None:
    upstream = scenario.upstream(standard_world(latency_ms=LATENCY_MS))
    url = f"sqlite:///{tmp_path}/chaos.db"
    env = scenario.embedded_env(upstream, url)

    [run] = scenario.start("run", env=env)
    point = scenario.until_stored(scenario.probe(url), upstream, "refund", KILL_AT_REFUNDS)
    scenario.kill(run, f"{point} ({LATENCY_MS} ms upstream latency)")

    scenario.start("run", env=env)
    scenario.converge(url, upstream.expected, CONVERGE_SECONDS)
    scenario.conclude(url, upstream, upstream.expected())


def test_kill_9_of_worker_and_scheduler_at_40_percent_of_orders_then_restart(
    scenario: Scenario, pg_url: str, redis_namespace: tuple[str, str]
) -> None:
    upstream = scenario.upstream(standard_world(latency_ms=LATENCY_MS))
    upgrade(pg_url)  # the release step
    env = scenario.deployment_env(upstream, pg_url, *redis_namespace)

    worker, scheduler = scenario.start("worker", "scheduler", env=env)
    point = scenario.until_stored(scenario.probe(pg_url), upstream, "order", KILL_AT_ORDERS)
    scenario.kill(worker, f"{point} ({LATENCY_MS} ms upstream latency)")
    scenario.kill(scheduler, "the same moment")

    scenario.start("worker", "scheduler", env=env)
    scenario.converge(pg_url, upstream.expected, DEPLOYMENT_CONVERGE_SECONDS)
    scenario.conclude(pg_url, upstream, upstream.expected())
