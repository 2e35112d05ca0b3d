"""Views of a ledger for comparisons: against the sandbox's truth, or against another ledger.

Payloads are compared by ``ledger.jsonx.canonical`` bytes, so a number must keep its exact
digits (``1.50`` is not ``1.5``). Sequence numbers and hashes depend on the order in which
concurrent workers appended, so ``ledger_content`` leaves them out and keeps the content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from ledger import jsonx
from ledger.model import Snapshot
from ledger.storage.quarantine import iter_quarantined
from ledger.storage.store import LedgerStore
from sandbox.aurpay import World

SOURCE = "aurpay"
ObjectKey = tuple[str, str]  # (kind, external_id)
# truth() section → (ledger kind, id field)
TRUTH_SECTIONS = {
    "orders": ("order", "order_id"),
    "transactions": ("transaction", "tx_id"),
    "refund_infos": ("refund", "order_id"),
}


def truth_objects(world: World) -> dict[ObjectKey, bytes]:
    """Every valid object the sandbox serves, by (kind, id): its canonical JSON.

    The planted invalid list items are left out: they belong in quarantine, not the ledger. So
    are the items a test listed verbatim (``World.add_raw_order``): the test says where they go.
    """
    truth = world.truth()
    junk = {jsonx.canonical(r.record) for r in world.invalid_records()}
    junk |= {jsonx.canonical(item) for item in world.raw_orders()}
    objects: dict[ObjectKey, bytes] = {}
    for section, (kind, id_field) in TRUTH_SECTIONS.items():
        for record in truth[section]:
            text = jsonx.canonical(record)
            if text not in junk:
                objects[(kind, str(record[id_field]))] = text
    return objects


def ledger_objects(store: LedgerStore, source: str = SOURCE) -> dict[ObjectKey, bytes]:
    """The latest snapshot of every object of ``source`` in the ledger, by (kind, id): its
    canonical JSON."""
    return {
        (kind, s.external_id): jsonx.canonical(s.payload)
        for kind, _ in TRUTH_SECTIONS.values()
        for s in store.iter_latest(source, kind)
    }


def stored(store: LedgerStore, kind: str, external_id: str, source: str = SOURCE) -> Snapshot:
    """The latest snapshot of one object, which the test expects the ledger to hold."""
    snapshot = store.latest(source, kind, external_id)
    assert snapshot is not None, f"{source} {kind} {external_id} is not in the ledger"
    return snapshot


def truth_problems(
    store: LedgerStore, world: World, limit: int = 10, *, source: str = SOURCE
) -> list[str]:
    """How the latest snapshots of ``source`` differ from the sandbox's truth (empty: same)."""
    want, have = truth_objects(world), ledger_objects(store, source)
    problems = [f"missing from the ledger: {k}" for k in sorted(want.keys() - have.keys())]
    problems += [f"not in the sandbox: {k}" for k in sorted(have.keys() - want.keys())]
    problems += [
        f"differs {k}: ledger {have[k].decode()} != sandbox {want[k].decode()}"
        for k in sorted(want.keys() & have.keys())
        if have[k] != want[k]
    ]
    if len(problems) > limit:
        problems = [*problems[:limit], f"… and {len(problems) - limit} more"]
    return problems


def ledger_equals_truth(store: LedgerStore, world: World) -> bool:
    return not truth_problems(store, world)


@dataclass(frozen=True)
class LedgerContent:
    """What a ledger says, without the append order (seq) or the hashes that depend on it."""

    snapshots: frozenset[tuple[Any, ...]]  # (source, kind, id, version, canonical payload)
    journal: frozenset[tuple[Any, ...]]  # key, date, text, object, reversal, postings

    def differences(self, other: LedgerContent, limit: int = 5) -> list[str]:
        out = []
        for name in ("snapshots", "journal"):
            mine, theirs = getattr(self, name), getattr(other, name)
            out += [f"{name} only left: {row!r}" for row in sorted(mine - theirs, key=repr)[:limit]]
            out += [
                f"{name} only right: {row!r}" for row in sorted(theirs - mine, key=repr)[:limit]
            ]
        return out


def ledger_content(store: LedgerStore) -> LedgerContent:
    """Entries dated by observation (a refund-info carries no usable date) keep "observed"
    instead of the moment, which differs from one run to the next."""
    snapshots = list(store.iter_snapshots())
    by_seq = {s.seq: (s.source, s.kind, s.external_id, s.version) for s in snapshots}
    observed = {s.seq: s.observed_at for s in snapshots}
    journal = frozenset(
        (
            e.key,
            "observed" if e.date == observed[e.snapshot_seq] else e.date.isoformat(),
            e.description,
            e.source,
            e.extra["object_kind"],
            e.external_id,
            by_seq[e.snapshot_seq],
            e.reverses_key,
            tuple((p.account, p.currency, str(p.amount)) for p in e.postings),
        )
        for e in store.iter_journal()
    )
    return LedgerContent(
        frozenset((*by_seq[s.seq], jsonx.canonical(s.payload)) for s in snapshots), journal
    )


def versions_per_object(store: LedgerStore) -> Counter[tuple[str, str, str]]:
    """(source, kind, id) → how many versions the ledger holds."""
    return Counter((s.source, s.kind, s.external_id) for s in store.iter_snapshots())


def quarantined(engine: Engine) -> list[Mapping[str, Any]]:
    return list(iter_quarantined(engine))
