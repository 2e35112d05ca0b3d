"""Reconciliation rules: pure checks over snapshots that return findings, never raise.

A rule compares two exact Decimals; a difference counts only when its absolute value exceeds
the rule's tolerance for the currency (``for_rule``: a per-rule setting in the gateway's own
units, else ``PrecisionTable.tolerance(currency)``, one smallest unit), so dust never
alerts. A field that is absent, null or unparsable yields no finding for the equations that
need it: the quarantine reports malformed records, the rules report inconsistent ones.
The rules themselves live with their gateway, outside the ledger, listed in a ``rulebook`` its
reconcile plan owns; a finding's source is the subject snapshot's, so the same rules serve every
source (account) of a gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from ledger import jsonx
from ledger.journal.postings import UnpostableSnapshot, read_amount
from ledger.model import Snapshot
from ledger.money import fmt
from ledger.precision import PrecisionTable

Basis = Literal["documented", "inferred", "heuristic"]
BASES: tuple[Basis, ...] = ("documented", "inferred", "heuristic")
# What a rule rests on decides how loudly it speaks by default: a documented fact pages, an
# invariant inferred from examples warns, a heuristic stays off unless a setting enables it.
SEVERITY_OF: Mapping[str, str] = MappingProxyType(
    {"documented": "page", "inferred": "warn", "heuristic": "off"}
)
SEVERITIES = ("page", "warn", "info")


@dataclass(frozen=True)
class Finding:
    """One broken equation. ``difference`` = expected − actual, the amount that would sit in
    its suspense sub-account; ``check`` names the equation within the rule ("" when it has one).
    An incident (``ledger.reconcile.incidents``) folds a rule's findings on one subject into
    one: ``evidence`` then holds every failing check, ``related`` the other subjects involved."""

    rule: str
    source: str
    subject_id: str
    currency: str
    expected: Decimal
    actual: Decimal
    difference: Decimal
    tolerance: Decimal
    snapshot_seqs: tuple[int, ...]
    detail: str
    check: str = ""
    content_hashes: tuple[str, ...] = ()
    evidence: tuple[Mapping[str, Any], ...] = ()
    related: tuple[str, ...] = ()
    severity: str = ""  # set by the rule policy: page | warn | info

    def fingerprint(self) -> str:
        """sha256 of the canonical evidence: what was compared and which snapshot contents.

        Alert identity is (rule, subject_id, fingerprint). Content hashes rather than seqs, so
        a replayed store gives the same identities; ``detail`` (prose) is left out on purpose.
        """
        evidence = {
            "rule": self.rule,
            "source": self.source,
            "subject": self.subject_id,
            "check": self.check,
            "currency": self.currency,
            "expected": fmt(self.expected),
            "actual": fmt(self.actual),
            "snapshots": list(self.content_hashes),
        }
        return hashlib.sha256(jsonx.canonical(evidence)).hexdigest()


@dataclass(frozen=True)
class Rule:
    """A rule's id, its documentation (the equation and the doc fact), its check, and what it
    rests on (``basis``), which sets its default severity.

    The id names the check within its gateway ("refund-missing"), never the gateway or the
    source: alerts are keyed by (source, rule, subject) already. ``scale`` says how the
    gateway's own unit relates to the posted one (Ebioro cents: -2), so a tolerance setting is
    written the way the gateway writes amounts; ``tolerance`` is the default in those units
    (None: one smallest unit of the currency)."""

    id: str
    doc: str
    check: Callable[..., list[Finding]]
    basis: Basis = "inferred"
    gateway: str = ""
    scale: int = 0
    tolerance: Decimal | None = None

    @property
    def default_severity(self) -> str:
        return SEVERITY_OF[self.basis]

    @property
    def name(self) -> str:
        """``gateway.rule``, as the settings spell it."""
        return f"{self.gateway}.{self.id}" if self.gateway else self.id


RuleEntry = (
    tuple[str, Callable[..., list[Finding]]] | tuple[str, Callable[..., list[Finding]], Basis]
)


def rulebook(
    *rules: RuleEntry,
    gateway: str = "",
    scale: int = 0,
    tolerance: Decimal | None = None,
) -> Mapping[str, Rule]:
    """``{id: Rule}`` from (id, check[, basis]) entries, each documented by its check's
    docstring (basis "inferred" when not given); an id listed twice is a bug."""
    book: dict[str, Rule] = {}
    for entry in rules:
        rule_id, check = entry[0], entry[1]
        basis: Basis = entry[2] if len(entry) == 3 else "inferred"
        if rule_id in book:
            raise ValueError(f"rule {rule_id!r} is listed twice")
        doc = " ".join((check.__doc__ or "").split())
        book[rule_id] = Rule(rule_id, doc, check, basis, gateway, scale, tolerance)
    return MappingProxyType(book)


class RulePrecision(PrecisionTable):
    """The precision table as one rule sees it: its own tolerances (per currency, or ``*``
    for any) in the gateway's units, converted to posted units by ``scale``."""

    def __init__(
        self, base: PrecisionTable, tolerances: Mapping[str, Decimal], scale: int = 0
    ) -> None:
        super().__init__(base.places, base.tolerance_overrides)
        object.__setattr__(self, "_base", base)
        object.__setattr__(
            self, "_own", {k.upper(): v.scaleb(scale) for k, v in tolerances.items()}
        )

    def tolerance(self, currency: str) -> Decimal:
        own: Mapping[str, Decimal] = self.__dict__["_own"]
        found = own.get(currency.upper(), own.get("*"))
        base: PrecisionTable = self.__dict__["_base"]
        return found if found is not None else base.tolerance(currency)


Precisions = PrecisionTable | Callable[[str], PrecisionTable]


def for_rule(precision: Precisions, rule: str) -> PrecisionTable:
    """The precision table ``rule`` judges with: ``precision`` itself, or its per-rule view."""
    return precision if isinstance(precision, PrecisionTable) else precision(rule)


def amount_or_none(payload: Mapping[str, Any], name: str) -> Decimal | None:
    """``payload[name]`` as a Decimal, or None when absent, null or unparsable."""
    try:
        return read_amount(payload, name)
    except UnpostableSnapshot:
        return None


def fee_or_none(payload: Mapping[str, Any], name: str) -> Decimal | None:
    """A fee: null or absent means zero (as the journal posts it); unparsable means None."""
    if payload.get(name) is None:
        return Decimal(0)
    return amount_or_none(payload, name)


def code_or_none(payload: Mapping[str, Any], name: str) -> str | None:
    """A currency or chain code, upper-cased; None when absent or not a non-empty string."""
    value = payload.get(name)
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def report(
    rule: str,
    subject: Snapshot,
    currency: str,
    expected: Decimal,
    actual: Decimal,
    precision: PrecisionTable,
    evidence: tuple[Snapshot, ...],
    detail: str,
    check: str = "",
    *,
    tolerate: bool = True,
) -> list[Finding]:
    """``[finding]`` about ``subject`` from the snapshots it rests on; with ``tolerate``,
    ``[]`` when expected and actual differ by no more than the currency's tolerance."""
    difference = expected - actual
    if tolerate and not precision.exceeds(currency, difference):
        return []
    found = Finding(
        rule=rule,
        source=subject.source,
        subject_id=subject.external_id,
        currency=currency,
        expected=expected,
        actual=actual,
        difference=difference,
        tolerance=precision.tolerance(currency),
        snapshot_seqs=tuple(s.seq for s in evidence),
        detail=detail,
        check=check,
        content_hashes=tuple(s.content_hash for s in evidence),
    )
    return [found]


def mismatch(
    rule: str,
    subject: Snapshot,
    currency: str,
    precision: PrecisionTable,
    evidence: tuple[Snapshot, ...],
    detail: str,
    check: str,
) -> list[Finding]:
    """A disagreement that is not an amount (chain, currency): always one finding, amounts 0."""
    zero = Decimal(0)
    return report(
        rule, subject, currency, zero, zero, precision, evidence, detail, check, tolerate=False
    )
