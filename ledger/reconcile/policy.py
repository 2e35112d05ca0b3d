"""Rule policy: which rules run, how loudly, and with what tolerance, per the settings.

Each rule states what it rests on (``Rule.basis``); by default a documented fact pages, an
inferred invariant warns and a heuristic is off. A setting per rule (``gateway.rule``) can turn
it on or off, change its severity and set its tolerances per currency (``*``: any) in the
gateway's own units. Pure: the worker reads and validates the settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.precision import PrecisionTable
from ledger.reconcile.rules import Finding, Rule, RulePrecision

META_SEVERITY = "page"  # a source down or a flood of bad records: the ledger cannot be trusted


@dataclass(frozen=True)
class RuleSetting:
    """One rule's overrides; None keeps the default that its basis implies."""

    enabled: bool | None = None
    severity: str | None = None
    tolerance: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class RulePolicy:
    """The overrides by rule name (``gateway.rule``, or the bare id for every gateway)."""

    settings: Mapping[str, RuleSetting] = field(default_factory=dict)

    def setting(self, rule: Rule) -> RuleSetting:
        return self.settings.get(rule.name) or self.settings.get(rule.id) or RuleSetting()

    def enabled(self, rule: Rule) -> bool:
        explicit = self.setting(rule).enabled
        return explicit if explicit is not None else rule.default_severity != "off"

    def severity(self, rule: Rule) -> str:
        explicit = self.setting(rule).severity
        if explicit is not None:
            return explicit
        default = rule.default_severity
        return "info" if default == "off" else default  # a heuristic someone switched on

    def precision(self, rule: Rule, base: PrecisionTable) -> PrecisionTable:
        """``base`` as ``rule`` judges with it: its own tolerances first."""
        own = dict(self.setting(rule).tolerance)
        if rule.tolerance is not None:
            own.setdefault("*", rule.tolerance)
        return RulePrecision(base, own, rule.scale) if own else base

    def apply(self, rules: Mapping[str, Rule], findings: Iterable[Finding]) -> list[Finding]:
        """Findings of enabled rules, each stamped with its rule's severity; a finding of a
        rule outside ``rules`` (a meta check) pages."""
        kept: list[Finding] = []
        for finding in findings:
            rule = rules.get(finding.rule)
            if rule is None:
                kept.append(dataclasses.replace(finding, severity=META_SEVERITY))
            elif self.enabled(rule):
                kept.append(dataclasses.replace(finding, severity=self.severity(rule)))
        return kept
