"""The ``scenario`` fixture (a recorded chaos run, cleaned up whatever happens) and the session
report printed at the end and appended to a JSON file (``tests/chaos/report.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from tests.chaos.harness import CleanRuns, Scenario
from tests.chaos.report import RECORDS, ScenarioRecord, append_json, report_path, summary_lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Keep each phase's report on the item: the fixture's teardown reads the call's outcome."""
    report = yield
    setattr(item, f"chaos_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def clean_runs(tmp_path_factory: pytest.TempPathFactory) -> CleanRuns:
    return CleanRuns(tmp_path_factory.mktemp("clean-runs"))


@pytest.fixture
def scenario(
    request: pytest.FixtureRequest, tmp_path: Path, clean_runs: CleanRuns
) -> Iterator[Scenario]:
    family = request.node.module.__name__.rsplit(".", 1)[-1]
    record = ScenarioRecord(scenario=request.node.name, family=family)
    previous_broker = dramatiq.broker.global_broker  # the clean run installs its own
    run = Scenario(record, tmp_path, clean_runs)
    try:
        yield run
    finally:
        try:
            run.close()
        finally:
            dramatiq.set_broker(previous_broker)  # type: ignore[arg-type]
            record.duration_s = time.monotonic() - record.started
            call = getattr(request.node, "chaos_call", None)
            record.outcome = call.outcome if call is not None else "error"
            RECORDS.append(record)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not RECORDS:
        return
    terminalreporter.write_sep("=", "chaos report")
    for line in summary_lines(RECORDS):
        terminalreporter.write_line(line)
    path = report_path()
    append_json(RECORDS, path)
    terminalreporter.write_line(f"figures appended to {path}")
