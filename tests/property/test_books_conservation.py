"""Conservation under any history of events (pay, partial pay, overpay, refund, correction,
regression): at every effective date and per commodity, the gateway balance equals what
arrived minus what was refunded, every entry balances, and the ledger at that date is the
final truth restated at the events' own dates (a late correction never double-counts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.journal.balances import end_of_day, fold_balances
from ledger.journal.derive import plan_entries
from ledger.journal.postings import on_chain
from ledger.model import JournalEntry, Snapshot
from ledger.money import exact_arithmetic
from ledger.precision import PrecisionTable
from tests.helpers.books import DERIVERS
from tests.strategies import make_snapshot, order_payload

PRECISION = PrecisionTable()
UNIT = PRECISION.unit("BTC")
START = datetime(2025, 1, 1, tzinfo=UTC)
D = Decimal


class Versions:
    """``ledger.journal.postings.History`` over the versions appended so far."""

    def __init__(self) -> None:
        self.by_object: dict[tuple[str, str, str], list[Snapshot]] = defaultdict(list)

    def versions(self, source: str, kind: str, external_id: str) -> Sequence[Snapshot]:
        return self.by_object[(source, kind, external_id)]


amounts = st.decimals(min_value=D("0.0001"), max_value=D("5"), places=9)
# One order's story: each step is (status, obtained as a fraction of amount − fee or None)
steps = st.lists(
    st.tuples(
        st.sampled_from(["PENDING", "PARTIAL", "OVERDUE", "SUCCESS", "RESOLVED", "REFUNDED"]),
        st.sampled_from([None, D("0.5"), D("1"), D("1.1"), D("0.99999999")]),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(stories=st.lists(st.tuples(amounts, amounts, steps), min_size=1, max_size=4))
def test_assets_are_receipts_minus_refunds_at_every_effective_date(
    stories: list[tuple[Decimal, Decimal, list[tuple[str, Decimal | None]]]],
) -> None:
    history = Versions()
    journal: list[JournalEntry] = []
    effective: dict[tuple[str, str], JournalEntry | None] = {}
    final: dict[tuple[str, str], Snapshot] = {}
    seq = 0
    day = 0
    for n, (amount, fee_share, story) in enumerate(stories):
        order_id = f"2025010100000000{n:04d}"
        fee = (fee_share / 10).quantize(UNIT)
        for status, share in story:
            day += 1
            at = START + timedelta(days=day)
            due = amount - fee
            obtained = None if share is None else (due * share).quantize(D("1E-11"))
            payload: dict[str, Any] = order_payload(
                order_id=order_id, amount=str(amount), fee=str(fee), status=status,
                obtained=None if obtained is None else str(obtained),
                update_time=at.replace(tzinfo=None).isoformat(),
            )  # fmt: skip
            kinds = [("order", payload)]
            if status == "REFUNDED" and obtained:
                refund = {
                    "order_id": order_id,
                    "currency": "BTC",
                    "amount": on_chain(obtained, UNIT)[0],
                    "network_fee": D("0.00000100"),
                    "obtained": None,
                }
                kinds.append(("refund", refund))
            for kind, body in kinds:
                seq += 1
                key = ("aurpay", kind, order_id)
                snapshot = make_snapshot(
                    kind, body, version=len(history.by_object[key]) + 1, seq=seq, observed_at=at
                )
                history.by_object[key].append(snapshot)
                planned = plan_entries(
                    snapshot, effective.get((kind, order_id)), PRECISION, DERIVERS, history
                )
                for entry in planned:
                    journal.append(entry)
                    effective[(kind, order_id)] = None if entry.reverses_key else entry
                final[(kind, order_id)] = snapshot

    in_force = [e for e in effective.values() if e is not None]
    dates = sorted({e.date.date() for e in journal})
    with exact_arithmetic():
        for when in dates:  # every commodity balances at every effective date
            per_currency: dict[str, Decimal] = defaultdict(Decimal)
            for (_, currency), amount in fold_balances(journal, before=end_of_day(when)).items():
                per_currency[currency] += amount
            assert set(per_currency.values()) <= {D(0)}
        # in the end, the ledger is the final truth (each entry at its own effective date)…
        totals = fold_balances(journal)
        assert _nonzero(totals) == _nonzero(fold_balances(in_force))
        # …and the balance is what arrived (at the chain's precision) minus what was refunded,
        # computed from the gateway's own final words, not from the postings
        expected = D(0)
        for (kind, _), snapshot in final.items():
            expected += _moved(kind, snapshot.payload)
        assert totals.get(("assets:aurpay:BTC", "BTC"), D(0)) == expected


def _moved(kind: str, payload: dict[str, Any]) -> Decimal:
    if kind == "refund":
        return -D(str(payload["amount"]))
    amount, fee = D(payload["amount"]), D(payload["fee"])
    obtained = None if payload["obtained"] is None else D(payload["obtained"])
    if payload["status"] in {"SUCCESS", "RESOLVED", "REFUNDED"}:
        return on_chain(amount - fee if obtained is None else obtained, UNIT)[0]
    return on_chain(obtained, UNIT)[0] if obtained else D(0)


def _nonzero(totals: dict[tuple[str, str], Decimal]) -> dict[tuple[str, str], Decimal]:
    return {k: v for k, v in totals.items() if v != 0}
