"""Suspense is a clearing account, one sub-account per gateway object: opposite differences never
net out; resolving an alert as ``write-off ACCOUNT`` zeroes that alert's suspense with an
adjusting entry in the chain; a gateway correction clears it (``corrected``); ``tally adjust``
posts a balanced manual entry with its author and reason, refusing one that does not balance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledger.alerts.store import AlertStore
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.open import open_ledger
from ledger.storage.store import LedgerStore
from ledger.storage.verify import verify_store
from tests.strategies import order_payload
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.app.cli import main
from worker.config import load_settings
from worker.runtime import ledger_derivers, reconcile_plans

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
FIXED, SHORT, REFUNDED = "20250301000000000001", "20250301000000000002", "20250301000000000003"


def _order(order_id: str, obtained: str) -> RawRecord:
    payload = order_payload(
        order_id=order_id, tx_id=f"tx-{order_id}", chain="ETH", currency="USDC-ERC20",
        amount="100", fee="2", obtained=obtained, status="SUCCESS",
    )  # fmt: skip
    return RawRecord("aurpay", "order", order_id, payload)


def _suspense(order_id: str) -> str:
    return f"assets:suspense:aurpay:order:{order_id}"


@pytest.fixture
def books(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> LedgerStore:
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    store = open_ledger(
        ledger_url, PrecisionTable(), auto_upgrade=False, derivers=ledger_derivers(load_settings())
    )
    yield store
    store.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_opposite_differences_never_net_and_a_write_off_zeroes_one(
    books: LedgerStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # 10 short on one order, 10 short on another, 10 too much refunded on a third: each
    # difference stays in its object's own sub-account, where a single suspense would net
    refund = RawRecord("aurpay", "refund", REFUNDED, {
        "order_id": REFUNDED, "chain": "ETH", "currency": "USDC-ERC20", "amount": "50",
        "network_fee": "1", "obtained": "59",
    })  # fmt: skip
    books.append([_order(SHORT, "88"), _order(FIXED, "88"), refund], observed_at=NOW)
    assert books.account_balance(_suspense(SHORT), "USDC-ERC20") == Decimal(10)
    assert books.account_balance(_suspense(FIXED), "USDC-ERC20") == Decimal(10)
    refund_suspense = f"assets:suspense:aurpay:refund:{REFUNDED}"
    assert books.account_balance(refund_suspense, "USDC-ERC20") == Decimal(-10)
    settings = load_settings()
    ctx = ReconcileContext.from_settings(books, settings, lambda: NOW, reconcile_plans(settings))
    reconcile(ctx, full=True)
    (alert,) = [a for a in AlertStore(books.engine).list_alerts() if a.subject_id == SHORT]

    code, out, err = _cli(
        capsys, "alerts", "resolve", str(alert.id), "--write-off", "expenses:bad-debt",
        "--note", "customer will not pay the rest",
    )  # fmt: skip
    assert (code, err) == (0, "") and f"adjusting entry write-off-{alert.id}" in out
    assert books.account_balance(_suspense(SHORT), "USDC-ERC20") == 0
    assert books.account_balance("expenses:bad-debt", "USDC-ERC20") == Decimal(10)
    (entry,) = [e for e in books.iter_journal() if e.key.startswith("tally:adjustment:")]
    assert entry.meta["alert_id"] == alert.id and "customer will not pay" in entry.meta["reason"]
    assert verify_store(books).ok

    # a gateway correction clears the other one by itself, and its alert resolves as corrected
    books.append([_order(FIXED, "98")], observed_at=NOW)  # the gateway fixes the second
    assert books.account_balance(_suspense(FIXED), "USDC-ERC20") == 0
    reconcile(ctx)
    (fixed,) = [a for a in AlertStore(books.engine).list_alerts(statuses=("resolved",))
                if a.subject_id == FIXED]  # fmt: skip
    assert fixed.resolution == "corrected"


def test_tally_adjust_posts_a_balanced_entry_with_its_author_and_refuses_one_that_is_not(
    books: LedgerStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        capsys, "adjust", "--reason", "bank fee on payout 42", "--author", "ana",
        "--date", "2026-12-01", "--posting", "expenses:bank-fees", "USD", "2.50",
        "--posting", "assets:bank:USD", "USD", "-2.50",
    )  # fmt: skip
    assert (code, err) == (0, "") and out.startswith("adjusting entry adj-")
    (entry,) = list(books.iter_journal())
    assert entry.meta == {"author": "ana", "reason": "bank fee on payout 42"}
    assert entry.date == datetime(2026, 12, 1, tzinfo=UTC)
    rows = [json.loads(line) for line in _cli(capsys, "export", "journal")[1].splitlines()]
    assert {r["account"] for r in rows} == {"expenses:bank-fees", "assets:bank:USD"}

    head = books.head()
    code, out, err = _cli(
        capsys, "adjust", "--reason", "oops", "--posting", "a:b", "USD", "1",
        "--posting", "c:d", "USD", "-2",
    )  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "does not balance: USD -1" in err
    assert books.head() == head  # nothing appended
    code, _, err = _cli(capsys, "adjust", "--reason", "x", "--posting", "a:b", "USD", "abc",
                        "--posting", "c:d", "USD", "1")  # fmt: skip
    assert code == 1 and "abc" in err and "Traceback" not in err
