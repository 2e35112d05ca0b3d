"""What ``tally demo`` shows: a short report of a ledger, built from the store alone, and a
scorecard of its alerts against the sandboxes' truth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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


Key = tuple[str, str]  # (rule, subject)


@dataclass(frozen=True)
class Truth:
    """What one sandbox planted, as its world states it."""

    source: str
    planted: frozenset[Key]
    held: frozenset[Key] = frozenset()  # found only once the refund grace has passed
    dust: frozenset[Key] = frozenset()
    legit: Mapping[str, str] = field(default_factory=dict)  # case name → subject id


@dataclass(frozen=True)
class Score:
    source: str
    planted: int
    found: int
    missed: tuple[Key, ...]
    false: tuple[Key, ...]
    held: int
    quiet: int  # dust and legitimate cases that raised nothing


def score(truth: Truth, open_alerts: Iterable[Key]) -> Score:
    """How the open alerts of one source compare with what its sandbox planted."""
    found = set(open_alerts)
    subjects_alerted = {subject for _, subject in found}
    quiet_dust = {key for key in truth.dust if key not in found}
    quiet_legit = {s for s in truth.legit.values() if s not in subjects_alerted}
    return Score(
        truth.source,
        len(truth.planted),
        len(found & truth.planted),
        tuple(sorted(truth.planted - found)),
        tuple(sorted(found - truth.planted)),
        len(truth.held & found),
        len(quiet_dust) + len(quiet_legit),
    )


def scorecard(
    scores: Sequence[Score], grace: str, first_alert: int | None, env: str = ""
) -> list[str]:
    """The demo's last lines: planted, found, false, and where to look next (``env``: what to
    put before ``tally`` to reach the demo's ledger)."""
    lines = ["scorecard (open alerts against the sandboxes' truth):"]
    for s in scores:
        held = f", {s.held} of them after the refund grace ({grace})" if s.held else ""
        lines.append(
            f"  {s.source}: planted {s.planted}, found {s.found}{held}, "
            f"missed {len(s.missed)}, false {len(s.false)}; "
            f"{s.quiet} dust and legitimate cases raised nothing"
        )
        lines += [f"    missed {rule} {subject}" for rule, subject in s.missed]
        lines += [f"    false  {rule} {subject}" for rule, subject in s.false]
    lines.append("look next" + (f" (with {env.strip()} set):" if env else ":"))
    hints = [
        ("tally alerts --group subject", "alerts about the same object together"),
        ("tally alerts --rule RULE", "one cause at a time (also --source, --since, --subject)"),
    ]
    if first_alert is not None:
        hints.insert(0, (f"tally alerts show {first_alert}", "evidence, postings and history"))
    lines += [f"  {command:<31}{why}" for command, why in hints]
    lines.append(
        "  tally alerts resolve ID… --note WHY [--corrected | --write-off ACCOUNT | --explained]"
    )
    return lines
