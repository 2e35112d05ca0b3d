"""``tally quarantine list`` shows every rejected record with its reason and exact raw JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ledger import jsonx
from ledger.model import RawRecord, Rejected
from worker.app.cli import main

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_rejected_records_are_listed_with_reason_and_raw_json(
    ledger_url: str,
    open_store: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = {"order_id": "20250101000000000001", "amount": "abc", "fee": Decimal("0.00000820392")}
    store = open_store(ledger_url)
    good = RawRecord("aurpay", "order", "20250101000000000002", {"status": "PENDING"})
    rejected = [
        Rejected("aurpay", "order", "amount: not a decimal amount: 'abc'", bad, bad["order_id"]),
        Rejected("aurpay", "transaction", "tx_id: missing", {"amount": "1"}),
    ]
    result = store.append([good], observed_at=NOW, rejected=rejected, run_id="run-1")
    assert (len(result.new_snapshots), result.quarantined) == (1, 2)  # the rest is written

    monkeypatch.setenv("DATABASE_URL", ledger_url)
    assert main(["quarantine", "list", "--format", "jsonl"]) == 0
    lines = [jsonx.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["external_id"], r["reason"]) for r in lines] == [
        ("order", "20250101000000000001", "amount: not a decimal amount: 'abc'"),
        ("transaction", None, "tx_id: missing"),
    ]
    assert lines[0]["raw"] == bad and lines[0]["run_id"] == "run-1"  # digits kept exactly

    assert main(["quarantine", "list", "--source", "ebioro"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 quarantined record(s)")
