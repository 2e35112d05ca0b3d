"""A few minutes of soak (``benchmarks/soak.py``) in CI: both modes against changing sandboxes,
failing on a memory slope, an unbounded bookkeeping table or a ledger that differs from the
truth; and the detectors themselves, on made-up samples and a sandbox world."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from benchmarks import soak
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.world import World as EbioroWorld
from tests.chaos.judge import ebioro_truth

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 4


def _samples(
    rss: list[float], sync_run: list[int], ages: list[float] | None = None, orphans: int = 0
) -> list[dict[str, Any]]:
    """Samples 15 s apart; with ``ages``, the age of sync_run's oldest pruned row in each (and
    ``orphans`` rows without their run from the middle on)."""
    samples = [
        {
            "t": 15.0 * n,
            "processes": {
                "run": {
                    "rss_mb": mb,
                    "threads": 9,
                    "fds": 20,
                    "postgres": 0,
                    "redis": 0,
                    "http_out": 2,
                    "http_in": 0,
                }
            },
            "rows": {"sync_run": runs, "ledger_snapshot": 100},
            "db_bytes": 1000,
            "log_bytes": 100 * n,
        }
        for n, (mb, runs) in enumerate(zip(rss, sync_run, strict=True))
    ]
    for n, (sample, age) in enumerate(zip(samples, ages or [None] * len(samples), strict=True)):
        if age is not None:
            lost = orphans if n >= len(samples) // 2 else 0
            sample["oldest"] = {"sync_run": {"age_s": age, "orphans": lost}}
    return samples


def _judge(
    rss: list[float], sync_run: list[int], ages: list[float] | None = None, orphans: int = 0
) -> dict[str, bool]:
    result: dict[str, Any] = {
        "samples": _samples(rss, sync_run, ages, orphans),
        "ledger_problems": [],
        "verify_ok": True,
        "full_scans": [],
        "idle": None,
    }
    soak.analyse(soak.Plan(4), result)
    targets: dict[str, bool] = result["analysis"]["targets"]
    return targets


def test_flat_memory_and_bounded_tables_pass() -> None:
    targets = _judge([100 + (n % 3) for n in range(17)], [40 + (n % 5) for n in range(17)])
    assert targets["memory flat (every process)"]
    assert targets["bookkeeping tables bounded"]


def test_a_memory_slope_fails() -> None:
    targets = _judge([100 + 2 * n for n in range(17)], [40] * 17)
    assert not targets["memory flat (every process)"]


def test_a_table_that_keeps_growing_fails() -> None:
    targets = _judge([100] * 17, [40 + 30 * n for n in range(17)])
    assert not targets["bookkeeping tables bounded"]


# Plan(4): runs kept 60 s, pruned every 15 s, so no pruned row may be older than 150 s.


def test_a_pruned_table_growing_with_the_world_within_its_retention_passes() -> None:
    # more rows per run as the world grows, but none older than the retention window
    targets = _judge(
        [100] * 17, [40 + 30 * n for n in range(17)], [60.0 + 20 * (n % 3) for n in range(17)]
    )
    assert targets["bookkeeping tables bounded"]


def test_a_pruned_table_keeping_rows_past_its_retention_fails() -> None:
    # the pruner stopped: the oldest row ages with the run, the row count hardly moves
    targets = _judge([100] * 17, [40 + (n % 5) for n in range(17)], [15.0 * n for n in range(17)])
    assert not targets["bookkeeping tables bounded"]


def test_rows_left_without_their_run_fail() -> None:
    targets = _judge([100] * 17, [40] * 17, [60.0] * 17, orphans=3)
    assert not targets["bookkeeping tables bounded"]


def test_a_change_counts_for_every_object_whose_payload_it_changes() -> None:
    """Refunding the rest of an Ebioro payment changes the payment and, as each refund embeds
    its payment, its earlier refund too: both may get a version more; the new refund starts
    at one."""
    world = EbioroWorld(EbioroSandboxConfig(seed=5, payments=10))
    (payment,) = world.add_payments(1, status="open")
    world.pay(payment)
    earlier = world.refund_payment(payment, value=1)["refund_id"]
    upstream = SimpleNamespace(ebioro=SimpleNamespace(world=world))
    upstream.expected = lambda: _ebioro_expected(world)
    mutator = soak.Mutator(cast(soak.Upstream, upstream), seed=1)
    refunds = []

    def refund_the_rest() -> bool:
        refunds.append(world.refund_payment(payment)["refund_id"])
        return True

    mutator.actions = [(refund_the_rest, 1)]
    mutator.step()
    assert mutator.versions == {
        ("ebioro", "payment", payment): 2,
        ("ebioro", "refund", str(earlier)): 2,
    }
    assert ("ebioro", "refund", str(refunds[0])) not in mutator.versions


def _ebioro_expected(world: EbioroWorld) -> soak.Expected:
    expected = soak.Expected()
    ebioro_truth(world, expected)
    return expected


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(15 * 60)
def test_a_short_soak_of_both_modes_meets_the_targets(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--minutes", str(MINUTES), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=14 * 60,
    )
    report = json.loads((tmp_path / "soak.json").read_text())
    assert not report["failures"], done.stdout[-3000:]
    assert [r["mode"] for r in report["results"]] == ["deployment", "embedded"]
    for result in report["results"]:
        missed = [t for t in soak.STRICT if not result["analysis"]["targets"][t]]
        assert not missed, f"{result['mode']}: {missed}\n{result['ledger_problems']}"
        assert len(result["samples"]) >= 10
    assert done.returncode == 0, done.stdout[-3000:]


def _tick(
    minute: int, aurpay: tuple[float, int], ebioro: tuple[float, int]
) -> list[dict[str, Any]]:
    started = f"2026-12-05T08:{minute:02d}:00+00:00"
    return [
        {"source": "aurpay", "started": started, "seconds": aurpay[0], "pages": aurpay[1]},
        {"source": "ebioro", "started": started, "seconds": ebioro[0], "pages": ebioro[1]},
    ]


def test_a_full_scan_is_judged_per_tick_not_per_source() -> None:
    # Ebioro's 9 pages wait behind an Aurpay scan that grew: its own time per page doubles,
    # the tick's wall time per page does not.
    scans = [*_tick(0, (3.0, 14), (3.0, 5)), *_tick(3, (1.5, 16), (0.5, 5))]
    scans += _tick(6, (1.9, 25), (2.4, 9))
    result = {"full_scans": scans}
    assert soak.scan_ratios(result)["ebioro"] > 2
    assert soak.tick_ratio(result) == pytest.approx(1.0, abs=0.1)


def test_a_whole_tick_getting_slower_fails() -> None:
    scans = [*_tick(0, (3.0, 14), (3.0, 5)), *_tick(3, (1.5, 16), (0.5, 5))]
    scans += _tick(6, (3.5, 16), (3.0, 5))
    assert soak.tick_ratio({"full_scans": scans}) > 1.2
