"""A few minutes of soak (``benchmarks/soak.py``) in CI: both modes against changing sandboxes,
failing on a memory slope, an unbounded bookkeeping table or a ledger that differs from the
truth; and the detectors themselves, on made-up samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import soak

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 4


def _samples(rss: list[float], sync_run: list[int]) -> list[dict[str, Any]]:
    return [
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


def _judge(rss: list[float], sync_run: list[int]) -> dict[str, bool]:
    result: dict[str, Any] = {
        "samples": _samples(rss, sync_run),
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
