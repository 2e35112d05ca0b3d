"""One summary per sync: ``sync_finished`` at info when the sync appended something, at debug
when it found nothing new; no per-feed line above debug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from structlog.testing import capture_logs

from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.session import worker_session


def test_a_sync_logs_one_summary_and_an_idle_one_only_at_debug(
    sandbox_factory: Callable[..., Any], sqlite_url: str
) -> None:
    sandbox = sandbox_factory(seed=5, orders=30)
    with worker_session(sandbox_settings(sandbox, sqlite_url, aurpay_page_size=10)) as session:
        with capture_logs() as busy:
            run_sync(session, "incremental")
        with capture_logs() as idle:
            run_sync(session, "incremental")

    def lines(events: list[dict[str, Any]], level: str) -> list[str]:
        return [e["event"] for e in events if e["log_level"] == level]

    summaries = [e for e in busy if e["event"] == "sync_finished"]
    assert [e["log_level"] for e in summaries] == ["info"]
    assert summaries[0]["new_snapshots"] > 0
    assert "feed_synced" not in lines(busy, "info")
    assert "sync_finished" in lines(idle, "debug")
    assert [e for e in idle if e["log_level"] not in ("debug",)] == []
