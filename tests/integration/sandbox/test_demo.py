"""``tally demo`` end to end: both sandboxes synced and reconciled, then a scorecard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.app.cli import main


def test_the_demo_ends_with_a_scorecard_planted_found_and_no_false_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    argv = ["demo", "--orders", "160", "--payments", "90", "--database", database]
    assert main([*argv, "--mismatch-rate", "0.15"]) == 0
    out = capsys.readouterr().out
    card = out.split("scorecard (open alerts against the sandboxes' truth):")[1]
    lines = {
        m[1]: m for m in re.finditer(r"  (\w+): planted (\d+), found (\d+).*?false (\d+)", card)
    }
    assert set(lines) == {"aurpay", "ebioro"}
    for match in lines.values():
        planted, found, false = int(match[2]), int(match[3]), int(match[4])
        assert planted > 0 and found == planted and false == 0, match[0]
    assert "missed 0" in card and "raised nothing" in card
    assert re.search(r"tally alerts show \d+", card) and f"DATABASE_URL={database}" in card
