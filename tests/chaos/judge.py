"""The verdict on a chaos run: the whole ledger against the sandboxes' truth and a clean run.

``ledger_problems`` is cheap enough to poll while tally runs (latest snapshots, versions, open
alerts, quarantine); ``journal_problems`` (the journal against a clean run's, entry by entry)
and ``tally_verify`` run once at the end. Each problem is one line naming its kind (``lost``,
``unexpected``, ``differs``, ``duplicated``, ``extra versions``, ``missed alert``, ``false
alert``, ``quarantine``, ``journal``, ``unbalanced``, ``verify``): the report counts them.
"""

from __future__ import annotations

import io
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ledger import jsonx
from ledger.alerts.store import AlertStore
from ledger.journal.derive import balances
from ledger.model import JournalEntry, Snapshot
from ledger.storage.store import LedgerStore
from tests.helpers.ledger_view import quarantined, truth_objects
from worker.app.cli import main

ObjectId = tuple[str, str, str]  # (source, kind, external_id)
AlertKey = tuple[str, str, str]  # (source, rule, subject_id)
# The kinds each source stores, and (for Ebioro) the truth section and id field of each.
KINDS = {"aurpay": ("order", "transaction", "refund"), "ebioro": ("payment", "refund")}
EBIORO_SECTIONS = {"payments": ("payment", "id"), "refunds": ("refund", "refund_id")}


@dataclass
class Expected:
    """What a converged ledger holds: objects, open alerts, quarantined records (by
    ``quarantine_text``), and how many versions each changed object may have (any other object:
    exactly one)."""

    objects: dict[ObjectId, bytes] = field(default_factory=dict)
    alerts: set[AlertKey] = field(default_factory=set)
    quarantined: Counter[str] = field(default_factory=Counter)
    versions: dict[ObjectId, int] = field(default_factory=dict)


def quarantine_text(raw: Any) -> str:
    """A quarantined record as compared: canonical JSON, or the text itself when it is none
    (the store keeps a listed JSON string as its bare text)."""
    if isinstance(raw, str):
        try:
            return jsonx.canonical(jsonx.loads(raw)).decode()
        except ValueError:
            return raw
    return jsonx.canonical(raw).decode()


def aurpay_truth(world: Any, expected: Expected) -> None:
    """Add an Aurpay sandbox's objects and planted mismatches to ``expected``."""
    for (kind, external_id), text in truth_objects(world).items():
        expected.objects[("aurpay", kind, external_id)] = text
    expected.alerts |= {("aurpay", rule, subject) for rule, subject in world.expected_mismatches()}
    _junk_quarantined(world, expected)


def ebioro_truth(world: Any, expected: Expected) -> None:
    """Add an Ebioro sandbox's objects (its planted junk left out) and mismatches."""
    truth = jsonx.loads(jsonx.dumps(world.truth()))
    junk = {jsonx.canonical(r.record) for r in world.invalid_records()}
    for section, (kind, id_field) in EBIORO_SECTIONS.items():
        for record in truth[section]:
            text = jsonx.canonical(record)
            if text not in junk:
                expected.objects[("ebioro", kind, str(record[id_field]))] = text
    # A refunded payment without refund alerts only a grace period after tally first saw it.
    found = world.expected_mismatches() - world.held_by_grace()
    expected.alerts |= {("ebioro", rule, subject) for rule, subject in found}
    _junk_quarantined(world, expected)


def _junk_quarantined(world: Any, expected: Expected) -> None:
    """The junk a sandbox planted is quarantined, each distinct record once."""
    for junk in world.invalid_records():
        expected.quarantined[quarantine_text(junk.record)] = 1


def ledger_problems(store: LedgerStore, expected: Expected, limit: int = 8) -> list[str]:
    """How the ledger differs from ``expected`` (empty: converged); at most ``limit`` lines of
    each kind, then a count of the rest."""
    have = {
        (source, kind, s.external_id): jsonx.canonical(s.payload)
        for source, kinds in KINDS.items()
        for kind in kinds
        for s in store.iter_latest(source, kind)
    }
    want = expected.objects
    found: dict[str, list[str]] = defaultdict(list)
    for key in sorted(want.keys() - have.keys()):
        found["lost"].append(f"lost: {key}")
    for key in sorted(have.keys() - want.keys()):
        found["unexpected"].append(f"unexpected: {key}")
    for key in sorted(want.keys() & have.keys()):
        if have[key] != want[key]:
            found["differs"].append(f"differs: {key}: {_fields_apart(have[key], want[key])}")
    _version_problems(store.iter_snapshots(), expected.versions, found)
    _alert_problems(store, expected.alerts, found)
    raws = Counter(quarantine_text(row["raw"]) for row in quarantined(store.engine))
    for raw, count in sorted((raws - expected.quarantined).items()):
        found["quarantine"].append(f"quarantine: unexpected x{count}: {raw[:200]}")
    for raw, count in sorted((expected.quarantined - raws).items()):
        found["quarantine"].append(f"quarantine: missing x{count}: {raw[:200]}")
    return _capped(found, limit)


def _fields_apart(ledger: bytes, truth: bytes) -> str:
    """The top-level fields in which two canonical payloads differ, ledger value first."""
    mine, theirs = jsonx.loads(ledger), jsonx.loads(truth)
    if not (isinstance(mine, dict) and isinstance(theirs, dict)):
        return f"ledger {ledger.decode()[:200]} != truth {truth.decode()[:200]}"
    apart = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    if not apart:  # e.g. a field null on one side, missing on the other
        return f"ledger {ledger.decode()[:200]} != truth {truth.decode()[:200]}"
    return "; ".join(
        f"{k} ledger {jsonx.dumps(mine.get(k))[:80]} != truth {jsonx.dumps(theirs.get(k))[:80]}"
        for k in apart
    )


def _version_problems(
    snapshots: Iterable[Snapshot], allowed: Mapping[ObjectId, int], found: dict[str, list[str]]
) -> None:
    versions = Counter((s.source, s.kind, s.external_id, s.version) for s in snapshots)
    for version, count in sorted(versions.items()):
        if count > 1:
            found["duplicated"].append(f"duplicated: {version} stored {count} times")
    per_object: Counter[ObjectId] = Counter((v[0], v[1], v[2]) for v in versions)
    for obj, count in sorted(per_object.items()):
        if count > allowed.get(obj, 1):
            found["extra versions"].append(
                f"extra versions: {obj} has {count}, the changes justify {allowed.get(obj, 1)}"
            )


def _alert_problems(
    store: LedgerStore, planted: set[AlertKey], found: dict[str, list[str]]
) -> None:
    alerts = AlertStore(store.engine).list_alerts()
    live = {(a.source, a.rule, a.subject_id) for a in alerts}
    for key in sorted(planted - live):
        found["missed alert"].append(f"missed alert: {key}")
    for alert in sorted(alerts, key=lambda a: (a.source, a.rule, a.subject_id, a.check)):
        if (alert.source, alert.rule, alert.subject_id) not in planted:
            found["false alert"].append(
                f"false alert: {(alert.source, alert.rule, alert.subject_id)} {alert.detail}"
            )


def _capped(found: Mapping[str, list[str]], limit: int) -> list[str]:
    lines: list[str] = []
    for kind in sorted(found):
        items = found[kind]
        lines += items[:limit]
        if len(items) > limit:
            lines.append(f"{kind}: … and {len(items) - limit} more")
    return lines


# --- the journal against a clean run of the same world


EntryRow = tuple[Any, ...]


def _journal_by_object(store: LedgerStore) -> dict[ObjectId, list[tuple[JournalEntry, EntryRow]]]:
    """Every entry grouped by its object, with what a clean run must match: key, date (or
    "observed" for entries dated by observation, which differ from run to run), text,
    reversal and postings."""
    observed = {s.seq: s.observed_at for s in store.iter_snapshots()}
    grouped: dict[ObjectId, list[tuple[JournalEntry, EntryRow]]] = defaultdict(list)
    for entry in store.iter_journal():
        date = "observed" if entry.date == observed.get(entry.snapshot_seq) else entry.date
        row = (
            entry.key,
            str(date),
            entry.description,
            entry.reverses_key,
            tuple((p.account, p.currency, str(p.amount)) for p in entry.postings),
        )
        obj = (entry.source, str(entry.extra["object_kind"]), entry.external_id)
        grouped[obj].append((entry, row))
    return grouped


def _net(entries: Iterable[JournalEntry]) -> dict[tuple[str, str], Decimal]:
    """What a set of entries leaves on each (account, currency), zeros left out."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        for posting in entry.postings:
            totals[(posting.account, posting.currency)] += posting.amount
    return {key: value for key, value in totals.items() if value != 0}


def journal_problems(store: LedgerStore, clean: LedgerStore, limit: int = 8) -> list[str]:
    """Entries that do not balance per commodity, and every object whose journal differs from
    the clean run's: the same entries by key for an object stored once in both ledgers; the
    same net postings for one that changed (its corrections reverse and repost)."""
    found: dict[str, list[str]] = defaultdict(list)
    mine, theirs = _journal_by_object(store), _journal_by_object(clean)
    versions = Counter(s[:3] for s in _object_versions(store))
    clean_versions = Counter(s[:3] for s in _object_versions(clean))
    for obj in sorted(mine.keys() | theirs.keys()):
        ours, reference = mine.get(obj, []), theirs.get(obj, [])
        for entry, _ in ours:
            off = {cur: total for cur, total in balances(entry.postings).items() if total != 0}
            if off:
                found["unbalanced"].append(f"unbalanced: {entry.key} {off}")
        if versions[obj] <= 1 and clean_versions[obj] <= 1:
            rows, clean_rows = {r for _, r in ours}, {r for _, r in reference}
            for row in sorted(rows - clean_rows, key=repr):
                found["journal"].append(f"journal: {obj} only in the chaos run: {row}")
            for row in sorted(clean_rows - rows, key=repr):
                found["journal"].append(f"journal: {obj} only in the clean run: {row}")
        elif _net(e for e, _ in ours) != _net(e for e, _ in reference):
            net, clean_net = _net(e for e, _ in ours), _net(e for e, _ in reference)
            found["journal"].append(f"journal: {obj} nets {net} != clean run {clean_net}")
    return _capped(found, limit)


def _object_versions(store: LedgerStore) -> set[tuple[str, str, str, int]]:
    return {(s.source, s.kind, s.external_id, s.version) for s in store.iter_snapshots()}


def problem_counts(problems: Iterable[str]) -> dict[str, int]:
    """Problems per kind (the word before the colon), counting "… and N more" lines as N."""
    counts: Counter[str] = Counter()
    for line in problems:
        kind, _, rest = line.partition(":")
        more = rest.strip()
        if more.startswith("… and ") and more.endswith(" more"):
            counts[kind] += int(more.removeprefix("… and ").removesuffix(" more"))
        else:
            counts[kind] += 1
    return dict(counts)


def tally_verify(database_url: str) -> list[str]:
    """``tally verify`` (the command, run in this process to spare an interpreter start): []
    when the chain is intact, else what it said."""
    out = io.StringIO()
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url
    try:
        with redirect_stdout(out), redirect_stderr(out):
            code = main(["verify"])
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
    text = out.getvalue().strip()
    return [] if code == 0 and text.startswith("ledger intact:") else [f"verify: {text[:500]}"]
