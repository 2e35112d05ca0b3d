"""Period close: a close is sealed in the chain, refuses to go twice, backwards or into the
future, and afterwards a late gateway correction of a closed day posts on the first open day
(keeping its effective date) so balances at the closed date never change; ``--as-of`` shows
what the ledger said at a past recorded time."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.journal.periods import CloseRefused
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from ledger.storage.triggers import drop_statements
from ledger.storage.verify import verify_store
from tests.strategies import order_payload
from worker.app.cli import main
from worker.config import load_settings
from worker.runtime import ledger_derivers

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ORDER = "20250110000000000001"
SUSPENSE = f"assets:suspense:aurpay:order:{ORDER}"


def _order(**fields: Any) -> RawRecord:
    payload = order_payload(order_id=ORDER, chain="TRX", currency="USDT-TRC20", **fields)
    return RawRecord("aurpay", "order", ORDER, payload)


@pytest.fixture
def books(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> LedgerStore:
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    store = open_ledger(
        ledger_url, PrecisionTable(), auto_upgrade=False, derivers=ledger_derivers(load_settings())
    )
    sale = _order(amount="100", fee="1", obtained="98", update_time="2025-01-10T10:00:00")
    store.append([sale], observed_at=datetime(2025, 1, 10, 11, tzinfo=UTC))
    yield store
    store.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_correction_of_a_closed_day_posts_on_the_first_open_day(
    books: LedgerStore, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _cli(capsys, "balances", "--at", "2025-01-31", "--format", "json")
    assert before[0] == 0 and f'"{SUSPENSE}"' in before[1]
    code, out, err = _cli(capsys, "period", "close", "--through", "2025-01-31", "--note", "Jan")
    assert (code, err) == (0, "") and out.startswith("books closed through 2025-01-31")

    corrected = _order(amount="100", fee="1", obtained="99", update_time="2025-01-12T00:00:00")
    books.append([corrected], observed_at=NOW)

    after = _cli(capsys, "balances", "--at", "2025-01-31", "--format", "json")
    assert after == before  # byte-identical: a closed period never changes
    late = [e for e in books.iter_journal() if e.recorded_at == NOW]
    assert [e.reverses_key is not None for e in late] == [True, False]
    for entry in late:  # booked on the first open day, keeping when it happened
        assert entry.date == datetime(2025, 2, 1, tzinfo=UTC)
        assert entry.meta["original_date"] == "2025-01-10T10:00:00.000000Z"
    feb = json.loads(_cli(capsys, "balances", "--at", "2025-02-01", "--format", "json")[1])
    balance = {(r["account"], r["currency"]): r["balance"] for r in feb}
    assert balance[("assets:aurpay:USDT-TRC20", "USDT-TRC20")] == "99"
    assert balance.get((SUSPENSE, "USDT-TRC20"), "0") == "0"  # cleared on Feb 1st
    # as of a recorded time before the correction, the ledger said what it said then
    as_of = _cli(capsys, "balances", "--as-of", "2026-01-01", "--format", "json")
    assert as_of == before
    assert verify_store(books).ok


def test_a_close_is_sealed_listed_and_refused_twice_backwards_or_in_the_future(
    books: LedgerStore, capsys: pytest.CaptureFixture[str]
) -> None:
    head = books.head()
    closed = books.close_period(date(2025, 1, 31), now=NOW, note="January")
    assert (closed.sealed_seq, closed.sealed_hash) == head
    assert books.head()[0] == head[0] + 1  # the close is in the chain
    with pytest.raises(CloseRefused, match="already closed through 2025-01-31"):
        books.close_period(date(2025, 1, 31), now=NOW)
    with pytest.raises(CloseRefused, match="never moves backwards"):
        books.close_period(date(2024, 12, 31), now=NOW)
    with pytest.raises(CloseRefused, match="only days before today"):
        books.close_period(NOW.date(), now=NOW)
    code, out, err = _cli(capsys, "period", "close", "--through", "2999-01-01")
    assert code == 1 and out == "" and err.count("\n") == 1 and "only days before today" in err
    with pytest.raises(SystemExit) as exited:
        main(["period", "close", "--through", "January"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "not a date" in err and "Traceback" not in err

    code, out, _ = _cli(capsys, "period", "list", "--format", "json")
    (listed,) = json.loads(out)
    assert listed["through"] == "2025-01-31" and listed["note"] == "January"
    assert listed["sealed_head"] == f"{head[0]}:{head[1]}"
    assert books.close_period(date(2025, 2, 28), now=NOW).through == date(2025, 2, 28)
    assert [c.through for c in books.periods()] == [date(2025, 1, 31), date(2025, 2, 28)]
    assert verify_store(books).ok


def test_verify_notices_a_forged_seal(books: LedgerStore) -> None:
    books.close_period(date(2025, 1, 31), now=NOW)
    dialect = books.engine.dialect.name
    with books.engine.begin() as conn:
        for statement in drop_statements(dialect):
            conn.execute(sa.text(statement))
        forged = '{"through":"2025-01-31","sealed_seq":1,"sealed_hash":"' + "0" * 64 + '"}'
        conn.execute(
            sa.text("UPDATE ledger_snapshot SET payload = :p WHERE source = 'tally'"), {"p": forged}
        )
    report = verify_store(books)
    assert not report.ok  # the payload no longer matches its hash, nor seals its head


def test_an_entry_dated_in_a_closed_period_by_a_late_first_sight_moves_too(
    books: LedgerStore,
) -> None:
    books.close_period(date(2025, 1, 31), now=NOW)
    late = RawRecord(
        "aurpay",
        "order",
        "20250115000000000002",
        order_payload(order_id="20250115000000000002", update_time="2025-01-15T09:00:00"),
    )
    books.append([late], observed_at=NOW + timedelta(hours=1))
    (entry,) = [e for e in books.iter_journal() if e.external_id == "20250115000000000002"]
    assert entry.date == datetime(2025, 2, 1, tzinfo=UTC)
    assert entry.meta["original_date"] == "2025-01-15T09:00:00.000000Z"
