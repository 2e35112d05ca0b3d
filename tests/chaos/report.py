"""The chaos session's report: one record per scenario (time, kills, faults injected, the
differences found), printed at the end of the session and appended to a JSON file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.chaos.judge import problem_counts

# Where the figures go: TALLY_TEST_CHAOS_REPORT, else <tmp>/tally-chaos/report.json. Each
# session appends one entry to the JSON list the file holds.
REPORT_VARIABLE = "TALLY_TEST_CHAOS_REPORT"
SHOWN_DIFFERENCES = 12


def report_path() -> Path:
    configured = os.environ.get(REPORT_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "tally-chaos" / "report.json"


@dataclass
class ScenarioRecord:
    """What one scenario did and found."""

    scenario: str
    family: str
    seed: int | None = None
    settings: dict[str, str] = field(default_factory=dict)  # shortened from their defaults
    kills: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    converged_after_s: float | None = None
    differences: list[str] = field(default_factory=list)
    outcome: str = "unknown"
    duration_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent, by phase
    started: float = field(default_factory=time.monotonic)
    _lapped: float = field(default_factory=time.monotonic)

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap to ``phase``."""
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._lapped
        self._lapped = now

    def kill(self, what: str) -> None:
        self.kills.append(what)

    def fault(self, what: str, count: int = 1) -> None:
        self.faults[what] += count

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data.pop("_lapped")
        data["phases"] = {k: round(v, 1) for k, v in self.phases.items()}
        data["faults"] = dict(self.faults)
        data["requests"] = dict(self.requests)
        data["difference_counts"] = problem_counts(self.differences)
        return data


RECORDS: list[ScenarioRecord] = []


def summary_lines(records: list[ScenarioRecord]) -> list[str]:
    """The session report, one block per scenario."""
    total = sum(r.duration_s for r in records)
    passed = sum(r.outcome == "passed" for r in records)
    lines = [f"{len(records)} scenarios, {passed} passed, {total:.0f}s in all"]
    for r in records:
        converged = "never" if r.converged_after_s is None else f"{r.converged_after_s:.1f}s"
        lines.append(
            f"- {r.scenario} [{r.outcome}] {r.duration_s:.1f}s, converged: {converged}, "
            f"seed {r.seed}"
        )
        if r.phases:
            lines.append("    time: " + ", ".join(f"{k} {v:.1f}s" for k, v in r.phases.items()))
        if r.settings:
            lines.append("    settings: " + ", ".join(f"{k}={v}" for k, v in r.settings.items()))
        if r.kills:
            lines.append(f"    kills ({len(r.kills)}): " + "; ".join(r.kills))
        if r.faults:
            shown = ", ".join(k if v == 1 else f"{k} x{v}" for k, v in sorted(r.faults.items()))
            lines.append(f"    faults: {shown}")
        if r.requests:
            lines.append(f"    upstream requests: {dict(sorted(r.requests.items()))}")
        if r.differences:
            counts = problem_counts(r.differences)
            lines.append(f"    differences: {counts}")
            lines += [f"      {d}" for d in r.differences[:SHOWN_DIFFERENCES]]
            if len(r.differences) > SHOWN_DIFFERENCES:
                lines.append(f"      … {len(r.differences) - SHOWN_DIFFERENCES} more lines")
    return lines


def append_json(records: list[ScenarioRecord], path: Path) -> None:
    """Append this session's records to the JSON list in ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sessions: list[Any] = []
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            sessions = loaded if isinstance(loaded, list) else [loaded]
        except ValueError:
            sessions = []  # a file cut short by an earlier crash: start the list again
    sessions.append(
        {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scenarios": [r.as_json() for r in records],
        }
    )
    path.write_text(json.dumps(sessions, indent=2, default=str) + "\n", encoding="utf-8")
