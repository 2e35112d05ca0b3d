"""Every worked example on docs/accounting.md's chart of accounts is a test: its events go
through the real derivers (with history, effective entries and period closes as the store
applies them) and the entries they post must read exactly as the page shows them."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger import jsonx
from ledger.journal.derive import plan_entries
from ledger.journal.periods import defer_into_open_period
from ledger.model import JournalEntry, Snapshot
from ledger.money import fmt
from ledger.precision import PrecisionTable
from tests.helpers.books import DERIVERS
from tests.strategies import make_snapshot

PAGE = Path(__file__).parents[3] / "docs" / "accounting.md"
EXAMPLE = re.compile(
    r"```json tally-example\n(?P<events>.*?)```\s*```text tally-expect\n(?P<expect>.*?)```", re.S
)
OBSERVED = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Versions:
    def __init__(self) -> None:
        self.by_object: dict[tuple[str, str, str], list[Snapshot]] = defaultdict(list)

    def versions(self, source: str, kind: str, external_id: str) -> Sequence[Snapshot]:
        return self.by_object[(source, kind, external_id)]


def examples() -> list[tuple[str, str]]:
    found = [(m["events"], m["expect"]) for m in EXAMPLE.finditer(PAGE.read_text("utf-8"))]
    assert len(found) >= 8, "the chart of accounts page lost its worked examples"
    return found


def run(spec: dict[str, Any]) -> list[JournalEntry]:
    """The entries the events post, as the store would append them."""
    history, effective = Versions(), {}
    closed: date | None = None
    posted: list[JournalEntry] = []
    for seq, event in enumerate(spec["events"], start=1):
        if "close_through" in event:  # tally period close --through …
            closed = date.fromisoformat(event["close_through"])
            continue
        source, kind = event.get("source", spec["source"]), event["kind"]
        payload = jsonx.loads(json.dumps(event["payload"]))
        external_id = str(payload.get("order_id") or payload.get("id"))
        key = (source, kind, external_id)
        snapshot = make_snapshot(
            kind,
            payload,
            version=len(history.by_object[key]) + 1,
            seq=seq,
            source=source,
            observed_at=OBSERVED,
            external_id=external_id,
        )
        history.by_object[key].append(snapshot)
        for entry in plan_entries(
            snapshot, effective.get(key), PrecisionTable(), DERIVERS, history
        ):
            entry = defer_into_open_period(entry, closed)
            posted.append(entry)
            effective[key] = None if entry.reverses_key else entry
    return posted


def render(entries: list[JournalEntry]) -> str:
    lines: list[str] = []
    for entry in entries:
        head = f"{entry.date.date().isoformat()} {entry.key}"
        if "original_date" in entry.meta:
            head += f"  (happened {entry.meta['original_date'][:10]})"
        lines.append(head)
        width = max(len(p.account) for p in entry.postings)
        amount_width = max(len(fmt(p.amount)) for p in entry.postings)
        currency_width = max(len(p.currency) for p in entry.postings)
        for p in entry.postings:
            value = "" if p.value is None else f"  {fmt(p.value):>8} {p.value_currency}"
            lines.append(
                f"  {p.account:<{width}}  {fmt(p.amount):>{amount_width}} "
                f"{p.currency:<{currency_width}}{value}".rstrip()
            )
        lines.append("")
    return "\n".join(lines)


@pytest.mark.parametrize("example", examples(), ids=lambda e: json.loads(e[0])["name"])
def test_the_page_shows_what_the_journal_posts(example: tuple[str, str]) -> None:
    events, expect = example
    assert render(run(json.loads(events))) == expect
