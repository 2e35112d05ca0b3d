"""Entries without a fiat value are never valued at zero: flagged ``no-price``, listed by
``tally unpriced`` and counted for ``tally status``; a later version that brings a quote
takes the entry out of the list."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.open import open_ledger
from tests.strategies import order_payload, refund_payload
from worker.app.cli import main
from worker.config import load_settings
from worker.runtime import ledger_derivers

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_unpriced_entries_are_listed_and_counted(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    derivers = ledger_derivers(load_settings())
    store = open_ledger(ledger_url, PrecisionTable(), auto_upgrade=False, derivers=derivers)
    try:
        refund = refund_payload()  # its order is not in the ledger: no quote to value it by
        no_quote = order_payload(order_id="20250207000000000009", vs_price=None)
        store.append(
            [
                RawRecord("aurpay", "refund", str(refund["order_id"]), refund),
                RawRecord("aurpay", "order", "20250207000000000009", no_quote),
                RawRecord(
                    "aurpay",
                    "order",
                    "20250207000000000010",
                    order_payload(order_id="20250207000000000010"),
                ),
            ],
            observed_at=NOW,
        )
        assert store.unpriced_count() == 2
        quoted = order_payload(order_id="20250207000000000009", vs_price="100.0")
        store.append(
            [RawRecord("aurpay", "order", "20250207000000000009", quoted)], observed_at=NOW
        )
        assert store.unpriced_count() == 1  # the correction brought a quote
    finally:
        store.close()
    capsys.readouterr()
    assert main(["unpriced", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["key"] == f"aurpay:refund:{refund['order_id']}:v1"
    assert {a["account"] for a in row["amounts"]} >= {"income:refunds"}
