"""What ``tally demo`` shows: a short report of a ledger, built from the store alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ledger.balances import fold_balances, render_table, sorted_balances
from ledger.store import LedgerStore
from ledger.verify import verify_store


def status_counts(store: LedgerStore, source: str) -> Counter[str]:
    return Counter(str(s.payload.get("status")) for s in store.iter_latest(source, "order"))


def report(store: LedgerStore, sources: Iterable[str], alert_lines: list[str]) -> str:
    lines = []
    for source in sources:
        statuses = status_counts(store, source)
        refunds = sum(1 for _ in store.iter_latest(source, "refund"))
        txs = sum(1 for _ in store.iter_latest(source, "transaction"))
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        lines.append(f"{source}: {sum(statuses.values())} orders ({by_status})")
        lines.append(f"{source}: {txs} transactions, {refunds} refunds")
    counts = store.counts()
    lines.append("ledger: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(verify_store(store).message())
    lines.append("")
    lines.append("balances:")
    lines.append(render_table(sorted_balances(fold_balances(store.iter_journal()))).rstrip())
    lines.append("")
    if alert_lines:
        lines.append("open alerts (expected − actual = difference; the sandbox planted these):")
        lines.extend(alert_lines)
    else:
        lines.append("open alerts: none")
    return "\n".join(lines)
