"""Toy's reconcile plan: an invoice is judged with all its credits; a changed credit re-judges
its invoice (link ``invoice-credit``, learned from the invoice id each credit names)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.model import Snapshot
from ledger.reconcile.plans import Evaluation, Loaded, SourcePlan, Terms, Work
from ledger.reconcile.rules import Rule
from tests.gateways.toy.rules import INVOICE_RULES, RULES, credits_exceed_invoice

INVOICE, CREDIT = "invoice", "credit"
INVOICES, CREDITS = "invoices", "credits"
INVOICE_CREDIT = "invoice-credit"


def invoice_of(credit: Snapshot) -> str | None:
    invoice_id = credit.payload.get("invoice_id")
    return invoice_id if isinstance(invoice_id, str) and invoice_id else None


class ToyPlan:
    """The plan of one toy source, named ``source``."""

    kinds: tuple[str, ...] = (INVOICE, CREDIT)
    rules: Mapping[str, Rule] = RULES

    def __init__(self, source: str) -> None:
        self.source = source

    def for_changes(self, changed: Sequence[tuple[str, str]], data: Loaded) -> Work:
        invoices = frozenset(i for kind, i in changed if kind == INVOICE)
        credits = frozenset(i for kind, i in changed if kind == CREDIT)
        return Work(self.source, {INVOICES: invoices, CREDITS: credits})

    def for_kind(self, kind: str, ids: frozenset[str]) -> Work:
        return Work(self.source, {INVOICES if kind == INVOICE else CREDITS: ids})

    def for_sweep(self, ids: frozenset[str]) -> Work:
        return Work(self.source, {INVOICES: ids})  # no rule waits on the clock

    def evaluate(self, work: Work, data: Loaded, terms: Terms) -> Evaluation:
        """The invoices in ``work`` and those its credits name, each with all its credits."""
        changed = data.get(CREDIT, work[CREDITS])
        invoice_ids = set(work[INVOICES]) | {i for c in changed.values() if (i := invoice_of(c))}
        invoices = data.get(INVOICE, invoice_ids)
        linked = data.linked(INVOICE_CREDIT, invoice_ids)
        credits = data.get(CREDIT, {c for ids in linked.values() for c in ids} | changed.keys())
        credits_of: dict[str, list[Snapshot]] = {}
        for credit in credits.values():
            if invoice_id := invoice_of(credit):
                credits_of.setdefault(invoice_id, []).append(credit)
        out = Evaluation(loaded=data.by_kind)
        for invoice_id in sorted(invoices):
            mine = credits_of.get(invoice_id, [])
            out.findings += credits_exceed_invoice(invoices[invoice_id], mine, terms.precision)
            out.judged(self.source, INVOICE_RULES, invoice_id)
            out.settled.add((self.source, invoice_id))
        for credit_id, credit in changed.items():
            if invoice_id := invoice_of(credit):
                out.links.add((self.source, INVOICE_CREDIT, invoice_id, credit_id))
        return out


def make_plan(source: str) -> SourcePlan:
    """The plan for the toy source named ``source``."""
    return ToyPlan(source)
