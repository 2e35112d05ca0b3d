"""What ``tally demo`` shows: a short report of a ledger, built from the store alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ledger.journal.balances import fold_balances, render_table, sorted_balances
from ledger.storage.store import LedgerStore
from ledger.storage.verify import verify_store

# The kind whose statuses summarise a source, and the kinds counted beside it.
PRIMARY_KIND = {"aurpay": "order", "ebioro": "payment"}
OTHER_KINDS = {"aurpay": ("transaction", "refund"), "ebioro": ("refund",)}


def source_lines(store: LedgerStore, source: str) -> list[str]:
    primary = PRIMARY_KIND[source]
    statuses = Counter(str(s.payload.get("status")) for s in store.iter_latest(source, primary))
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    others = ", ".join(
        f"{sum(1 for _ in store.iter_latest(source, kind))} {kind}s" for kind in OTHER_KINDS[source]
    )
    return [f"{source}: {sum(statuses.values())} {primary}s ({by_status}); {others}"]


def report(store: LedgerStore, sources: Iterable[str], alert_lines: list[str]) -> str:
    lines = []
    for source in sources:
        lines.extend(source_lines(store, source))
    counts = store.counts()
    lines.append("ledger: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(verify_store(store).message())
    lines.append("")
    lines.append("balances:")
    lines.append(render_table(sorted_balances(fold_balances(store.iter_journal()))).rstrip())
    lines.append("")
    if alert_lines:
        lines.append("open alerts (difference = expected − actual; the sandboxes planted these):")
        lines.extend(alert_lines)
    else:
        lines.append("open alerts: none")
    return "\n".join(lines)
