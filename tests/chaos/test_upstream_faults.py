"""A quarter of the upstream responses fail (429 with Retry-After, 500, or a 200 whose body is
cut in half, evenly) on both gateways for the whole run: tally retries its way to the truth with
nothing lost or duplicated and no alert raised by a fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import Scenario
from tests.chaos.upstream import standard_world

pytestmark = [pytest.mark.chaos]

FAULT_RATE = 0.25
EACH = {"rate_429": FAULT_RATE / 3, "rate_500": FAULT_RATE / 3, "rate_truncated": FAULT_RATE / 3}
CONVERGE_SECONDS = 60  # one full scan, every failed call retried (a 429 waits its 1 s)


def test_a_quarter_of_upstream_responses_fail_on_both_gateways(
    scenario: Scenario, tmp_path: Path
) -> None:
    upstream = scenario.upstream(standard_world(latency_ms=10, **EACH))
    url = f"sqlite:///{tmp_path}/chaos.db"
    scenario.start("run", env=scenario.embedded_env(upstream, url))

    scenario.converge(url, upstream.expected, CONVERGE_SECONDS)
    scenario.conclude(url, upstream, upstream.expected())
