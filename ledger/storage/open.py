"""``open_ledger``: an engine, a schema check (or upgrade), and a ``LedgerStore`` on top."""

from __future__ import annotations

from ledger.journal.postings import DeriverTable
from ledger.precision import PrecisionTable
from ledger.storage.engine import check_schema, make_engine, upgrade
from ledger.storage.store import LedgerStore, Planner


def open_ledger(
    url: str,
    precision: PrecisionTable,
    *,
    auto_upgrade: bool = False,
    planner: Planner | None = None,
    derivers: DeriverTable | None = None,
) -> LedgerStore:
    """An engine plus a ``LedgerStore`` on it (``planner``/``derivers`` as the store takes
    them), after making sure the schema is current."""
    engine = make_engine(url)
    try:
        if auto_upgrade:
            upgrade(engine)
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return LedgerStore(engine, precision, planner=planner, derivers=derivers)
