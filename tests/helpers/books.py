"""Both gateways' books under their default source names ("aurpay", "ebioro"), as the runtime
composes them, and an in-memory reconcile lookup, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.journal.postings import Deriver
from ledger.model import Snapshot
from ledger.reconcile.plans import SourcePlan
from worker.gateways.aurpay import plan as aurpay_plan
from worker.gateways.aurpay import postings as aurpay_postings
from worker.gateways.books import deriver_table, plan_table
from worker.gateways.ebioro import plan as ebioro_plan
from worker.gateways.ebioro import postings as ebioro_postings

DERIVERS: dict[tuple[str, str], Deriver] = deriver_table(
    {"aurpay": aurpay_postings.DERIVERS, "ebioro": ebioro_postings.DERIVERS}
)
PLANS: dict[str, SourcePlan] = plan_table(
    {"aurpay": aurpay_plan.make_plan, "ebioro": ebioro_plan.make_plan}
)


class MemoryLookup:
    """``ledger.reconcile.plans.Lookup`` over plain dicts; records what was read."""

    def __init__(self, *snapshots: Snapshot, links: dict[str, set[str]] | None = None) -> None:
        self.latest_by = {(s.source, s.kind, s.external_id): s for s in snapshots}
        self.links = links or {}
        self.reads: list[tuple[str, tuple[str, ...]]] = []

    def latest(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, Snapshot]:
        self.reads.append((kind, tuple(ids)))
        found = {i: self.latest_by.get((source, kind, i)) for i in ids}
        return {i: s for i, s in found.items() if s is not None}

    def linked(self, source: str, link: str, ids: Sequence[str]) -> dict[str, set[str]]:
        return {i: self.links[i] for i in ids if i in self.links}

    def versions(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, list[Snapshot]]:
        """Only the latest version is held: no history, so no regression."""
        found = {i: self.latest_by.get((source, kind, i)) for i in ids}
        return {i: [s] for i, s in found.items() if s is not None}
