"""Books a controller can close, on a synced sandbox world (issue 12's "done when"): every
received amount has an asset posting, entries are dated when the events happened (a 2025
backfill dates its refunds in 2025), sales carry the order's USD value, and the Beancount
export declares its operating currency and passes bean-check."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ledger.exports.beancount import write_beancount
from ledger.journal.derive import balances
from ledger.timeparse import parse_timestamp
from sandbox.aurpay import RunningSandbox
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.server import start_sandbox
from tests.helpers.sandbox import run_sync, sandbox_settings
from worker.app.session import worker_session
from worker.config import load_settings
from worker.gateways.ebioro.settings import SANDBOX_PUBLIC_KEY, SANDBOX_SECRET_KEY
from worker.sync.once import sync_once

SandboxFactory = Callable[..., RunningSandbox]


def _in_force(store: Any) -> list[Any]:
    """Each object's entries that are not reversed (what the books say now)."""
    entries = list(store.iter_journal())
    reversed_keys = {e.reverses_key for e in entries if e.reverses_key}
    return [e for e in entries if not e.reverses_key and e.key not in reversed_keys]


def test_a_backfilled_world_books_every_receipt_at_its_own_date_with_its_value(
    ledger_url: str, sandbox_factory: SandboxFactory, bean_check: Any
) -> None:
    sandbox = sandbox_factory(seed=12, orders=240, rate_invalid_record=0)
    orders = {o["order_id"]: o for o in sandbox.world.truth()["orders"]}
    with worker_session(sandbox_settings(sandbox, ledger_url)) as session:
        store = session.runtime.store
        run_sync(session)
        entries = _in_force(store)

        by_order = {e.external_id: e for e in entries if e.extra["object_kind"] == "order"}
        received = {i: o for i, o in orders.items() if o.get("obtained") not in (None, "0")}
        partial = [i for i, o in received.items() if o["status"] == "PARTIAL"]
        assert partial, "the world should hold partially paid orders"
        for order_id in received:  # every received amount is on an asset
            entry = by_order[order_id]
            assets = [p for p in entry.postings if p.account.startswith("assets:aurpay:")]
            assert assets and assets[0].amount > 0, order_id
        for order_id in partial:  # …owed to the customer until the order settles
            accounts = {p.account for p in by_order[order_id].postings}
            assert "liabilities:aurpay:deposits" in accounts and "income:sales" not in accounts

        for entry in entries:  # balanced per commodity, and in value where valued
            assert set(balances(entry.postings).values()) <= {Decimal(0)}
            if all(p.value is not None for p in entry.postings):
                assert sum(p.value for p in entry.postings if p.value is not None) == 0

        refunds = [e for e in entries if e.extra["object_kind"] == "refund"]
        assert refunds
        for entry in refunds:  # dated when the gateway reported the refund, not at sync time
            refunded_at = parse_timestamp(orders[entry.external_id]["update_time"])
            assert entry.date == refunded_at and entry.date.year == 2025
            assert entry.recorded_at is not None and entry.recorded_at.year >= 2026

        for order_id, entry in by_order.items():  # sales carry the order's own USD value
            sale = [p for p in entry.postings if p.account == "income:sales"]
            if sale:
                assert sale[0].value == -Decimal(orders[order_id]["vs_price"])
                assert sale[0].value_currency == "USD"
                assert entry.meta["value_source"] == "aurpay order.vs_price"

        out = io.StringIO()
        write_beancount(store.iter_journal(), out)
        text = out.getvalue()
        assert 'option "operating_currency" "USD"' in text
        assert re.search(r"\n\d{4}-\d\d-\d\d price BTC [0-9.]+ USD\n", text)  # the quotes
        assert re.search(r"\n +value: \"-?[0-9.]+ USD\"", text)
        result = bean_check(text)
        assert result.returncode == 0, result.stdout + result.stderr


def test_an_ebioro_world_books_every_payment_that_received_money(ledger_url: str) -> None:
    with start_sandbox(EbioroSandboxConfig(seed=5, payments=120)) as sandbox:
        payments = {p["id"]: p for p in sandbox.world.truth()["payments"]}
        settings = load_settings(
            database_url=ledger_url,
            ebioro_base_url=sandbox.base_url,
            ebioro_public_key=SANDBOX_PUBLIC_KEY,
            ebioro_secret_key=SANDBOX_SECRET_KEY,
        )
        with worker_session(settings) as session:
            report = sync_once(
                session.runtime,
                session.actors,
                session.worker,
                sources=["ebioro"],
                mode="full",
                timeout=120,
            )
            assert report.ok, report.failure()
            entries = _in_force(session.runtime.store)
    by_payment = {e.external_id: e for e in entries if e.extra["object_kind"] == "payment"}
    received = [i for i, p in payments.items() if p.get("amount_paid")]
    unsettled = [i for i in received if payments[i]["status"] in {"underpaid", "expired"}]
    assert unsettled, "the world should hold underpaid or expired payments with money in"
    for payment_id in received:
        legs = by_payment[payment_id].postings
        assert any(p.account == "assets:ebioro:USDC" and p.amount > 0 for p in legs), payment_id
        assert all(p.value_currency == payments[payment_id]["amount"]["currency"] for p in legs)
    for payment_id in unsettled:
        accounts = {p.account for p in by_payment[payment_id].postings}
        assert "liabilities:ebioro:deposits" in accounts and "income:sales" not in accounts
    for entry in entries:
        if entry.extra["object_kind"] == "refund":
            assert entry.date.year == 2025  # the embedded payment's time, not the sync's
