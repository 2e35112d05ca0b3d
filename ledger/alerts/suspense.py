"""Link a finding to the journal entry whose suspense leg (``assets:suspense:…``) carries its
difference.

That entry is the subject object's *effective* entry (a new version with the same postings
posts nothing, so it may belong to an earlier version), and only if it has a suspense leg of
exactly the finding's currency and difference: cross-checks between objects have none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Engine

from ledger.alerts.state import AlertKey, key_of
from ledger.journal.accounts import is_suspense
from ledger.model import Snapshot
from ledger.reconcile.rules import Finding
from ledger.storage.engine import read_only
from ledger.storage.lookups import effective_entries

Suspense = tuple[int, str]  # (journal seq, journal key)


def suspense_links(
    engine: Engine, findings: Sequence[Finding], loaded: Mapping[str, Mapping[str, Snapshot]]
) -> dict[AlertKey, Suspense]:
    """For each finding judged on a snapshot in ``loaded`` (kind → id → snapshot), the entry
    holding its difference in suspense, when there is one. One batched read."""
    by_seq = {s.seq: s for group in loaded.values() for s in group.values()}
    subjects = {
        key_of(f): by_seq[f.snapshot_seqs[0]]
        for f in findings
        if f.snapshot_seqs and f.snapshot_seqs[0] in by_seq
    }
    if not subjects:
        return {}
    objects = sorted({(s.source, s.kind, s.external_id) for s in subjects.values()})
    with read_only(engine).connect() as conn:
        entries = effective_entries(conn, objects)
    linked: dict[AlertKey, Suspense] = {}
    for finding in findings:
        subject = subjects.get(key_of(finding))
        if subject is None:
            continue
        entry = entries.get((subject.source, subject.kind, subject.external_id))
        if entry is None or entry.seq is None:
            continue
        if any(
            is_suspense(p.account)
            and p.currency == finding.currency
            and p.amount == finding.difference
            for p in entry.postings
        ):
            linked[key_of(finding)] = (entry.seq, entry.key)
    return linked
