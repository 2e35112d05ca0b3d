"""Which rules to re-run when objects change, and running them: one ``SourcePlan`` per source.

A plan turns changed objects into ``Work``, reads the related latest snapshots it needs
through a ``Lookup`` (the only I/O, injected), runs its gateway's rules and returns an
``Evaluation``: the findings, the (source, rule, subject) scopes it judged (an alert in a
judged scope that is no longer found resolves), and the facts reconcile keeps as indexes:
reverse links (e.g. transaction → orders) and the subjects the clock can break (swept
periodically). Plans live with their gateway, outside the ledger, which makes one per source it
serves (``make_plan(source)``); reconcile is handed a ``PlanTable``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from ledger.alerts.state import Scope
from ledger.model import Snapshot
from ledger.precision import PrecisionTable
from ledger.reconcile.policy import RulePolicy
from ledger.reconcile.rules import Finding, Precisions, Rule

Link = tuple[str, str, str, str]  # (source, link name, from_id, to_id)


class Lookup(Protocol):
    """The reads a plan makes: latest snapshots by id, and reconcile's reverse links."""

    def latest(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, Snapshot]: ...

    def linked(self, source: str, link: str, ids: Sequence[str]) -> dict[str, set[str]]: ...

    def versions(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, list[Snapshot]]:
        """Every stored version of each object, oldest first (the regression rules)."""
        ...


@dataclass(frozen=True)
class Work:
    """Ids to evaluate, by role (a plan's own names, e.g. "orders", "transactions")."""

    source: str
    ids: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __getitem__(self, role: str) -> frozenset[str]:
        return self.ids.get(role, frozenset())

    def __bool__(self) -> bool:
        return any(self.ids.values())


@dataclass
class Evaluation:
    """What a plan found, the scopes it judged, and the index facts it learned."""

    findings: list[Finding] = field(default_factory=list)
    scopes: set[Scope] = field(default_factory=set)
    links: set[Link] = field(default_factory=set)
    waiting: set[tuple[str, str]] = field(default_factory=set)  # the clock can break these
    settled: set[tuple[str, str]] = field(default_factory=set)  # judged, and not waiting
    loaded: dict[str, dict[str, Snapshot]] = field(default_factory=dict)  # kind → id → latest

    def judged(self, source: str, rules: Iterable[str], subject: str) -> None:
        self.scopes |= {(source, rule, subject) for rule in rules}


class SourcePlan(Protocol):
    """The reconcile plan of one source: its gateway's rules, bound to the source's name."""

    source: str
    kinds: tuple[str, ...]  # the kinds a full reconcile walks, in order
    rules: Mapping[str, Rule]  # every rule the plan judges, by id

    def for_changes(self, changed: Sequence[tuple[str, str]], data: Loaded) -> Work:
        """The work after these (kind, external_id) objects got new versions."""
        ...

    def for_kind(self, kind: str, ids: frozenset[str]) -> Work:
        """The work for every object of ``kind`` in ``ids`` (a page of a full reconcile)."""
        ...

    def for_sweep(self, ids: frozenset[str]) -> Work:
        """The work for waiting subjects, when only the clock moved."""
        ...

    def evaluate(self, work: Work, data: Loaded, terms: Terms) -> Evaluation:
        """Judge ``work``, reading related snapshots and links through ``data``."""
        ...


class Terms(NamedTuple):
    """What the rules judge with, in the order the evaluate functions take them; ``policy``
    gives each rule its own view of the precision table (its tolerances)."""

    precision: PrecisionTable
    now: datetime
    grace: timedelta
    policy: RulePolicy = RulePolicy()

    def judging(self, rules: Mapping[str, Rule]) -> Precisions:
        """What the gateways' evaluate functions take as ``precision``: rule id → its table."""
        tables = {rid: self.policy.precision(rule, self.precision) for rid, rule in rules.items()}
        return lambda rule_id: tables.get(rule_id, self.precision)


class Loaded:
    """Latest snapshots and links read through a ``Lookup``, each snapshot at most once;
    ``preloaded`` holds snapshots the caller read already (a page of a full reconcile)."""

    def __init__(
        self,
        lookup: Lookup,
        source: str,
        preloaded: Mapping[str, Mapping[str, Snapshot]] | None = None,
    ) -> None:
        self._lookup = lookup
        self._source = source
        self.by_kind: dict[str, dict[str, Snapshot]] = {
            kind: dict(group) for kind, group in (preloaded or {}).items()
        }
        self._asked: dict[str, set[str]] = {k: set(v) for k, v in self.by_kind.items()}
        self._versions: dict[str, dict[str, list[Snapshot]]] = {}  # kind → id → versions

    def get(self, kind: str, ids: Iterable[str]) -> dict[str, Snapshot]:
        wanted = set(ids)
        asked = self._asked.setdefault(kind, set())
        group = self.by_kind.setdefault(kind, {})
        missing = sorted(wanted - asked)
        if missing:
            group.update(self._lookup.latest(self._source, kind, missing))
            asked.update(missing)
        return {i: group[i] for i in wanted if i in group}

    def linked(self, link: str, ids: Iterable[str]) -> dict[str, set[str]]:
        wanted = sorted(set(ids))
        return self._lookup.linked(self._source, link, wanted) if wanted else {}

    def versions(self, kind: str, ids: Iterable[str]) -> dict[str, list[Snapshot]]:
        """Every stored version of each object, oldest first, read once per object."""
        wanted = set(ids)
        latest = self.by_kind.get(kind, {})
        known = self._versions.setdefault(kind, {})
        missing = []
        for i in wanted - known.keys():
            snapshot = latest.get(i)
            if snapshot is not None and snapshot.version == 1:
                # A latest version numbered 1 is the only one: nothing more to read (on a
                # first sync, every object).
                known[i] = [snapshot]
            else:
                missing.append(i)
        if missing:
            missing.sort()
            found = self._lookup.versions(self._source, kind, missing)
            for i in missing:
                known[i] = found.get(i, [])
        return {i: known[i] for i in wanted}


PlanTable = Mapping[str, SourcePlan]  # source name → its plan
PlanMaker = Callable[[str], SourcePlan]  # a gateway's plan for the source of that name
