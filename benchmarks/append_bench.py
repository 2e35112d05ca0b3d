"""Append throughput: snapshots/s through LedgerStore.append (hash chain, head lock, triggers)
against a plain executemany insert of the same rows into a same-shaped table without them.

    .venv/bin/python benchmarks/append_bench.py --rows 20000 [--db sqlite|postgres|both]

Each database kind gets a fresh database (a temp SQLite file; a throwaway PostgreSQL database
created through --pg-url and dropped after). Pages of --page records, one transaction each, on
both paths; the plain path also serialises payloads, as any store must. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from ledger import jsonx
from ledger.journal.derive import journal_planner
from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.store import LedgerStore
from ledger.storage.types import UTCDateTime
from worker.gateways.aurpay.postings import DERIVERS
from worker.gateways.books import deriver_table

PG_ADMIN_URL = os.environ.get("TALLY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2024, 8, 6, 7, 19, 26, tzinfo=UTC)


def records(count: int, status: str) -> list[RawRecord]:
    """Aurpay-shaped orders (the documented list item plus fee/obtained), parsed exactly."""
    out = []
    for i in range(count):
        text = (
            f'{{"user_id":"mct-07d283468bf8","order_id":"2024080607{i:012}","order_type":"INVOICE",'
            f'"platform":"AURPAY","status":"{status}","chain":"TRX","chain_name":"Tron",'
            f'"currency":"USDC-TRC20","amount":"{19 + i % 97}.0012","vs_price":"19.0",'
            f'"vs_currency":"USD","remark":"","refund":false,"fee":0.19,"obtained":"18.8112",'
            f'"create_time":"2024-08-06 07:19:26","update_time":"2024-08-06 07:21:02"}}'
        )
        payload = jsonx.loads(text)
        out.append(RawRecord("aurpay", "order", payload["order_id"], payload))
    return out


def pages(items: Sequence[RawRecord], size: int) -> Iterator[Sequence[RawRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def plain_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """ledger_snapshot's shape (same columns, key and unique index), no triggers, no chain."""
    return sa.Table(
        name,
        metadata,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        *(sa.Column(n, sa.String(128), nullable=False) for n in ("source", "kind", "external_id")),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        *(
            sa.Column(n, sa.String(64), nullable=False)
            for n in ("content_hash", "prev_hash", "entry_hash")
        ),
        sa.UniqueConstraint("external_id", "source", "kind", "version"),
    )


def run_plain(url: str, items: Sequence[RawRecord], page: int, name: str) -> float:
    engine = make_engine(url)
    table = plain_table(sa.MetaData(), name)
    table.create(engine)
    seq, dummy = 0, "0" * 64
    try:
        started = time.perf_counter()
        for chunk in pages(items, page):
            rows = []
            for record in chunk:
                seq += 1
                rows.append(
                    {
                        "seq": seq,
                        "source": record.source,
                        "kind": record.kind,
                        "external_id": record.external_id,
                        "version": 1,
                        "observed_at": NOW,
                        "payload": jsonx.dumps(record.payload),
                        "content_hash": dummy,
                        "prev_hash": dummy,
                        "entry_hash": dummy,
                    }
                )
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
        return len(items) / (time.perf_counter() - started)
    finally:
        engine.dispose()


def run_ledger(url: str, items: Sequence[RawRecord], page: int, planner: Any) -> float:
    store = LedgerStore(make_engine(url), PrecisionTable(), planner=planner)
    try:
        started = time.perf_counter()
        results = [store.append(c, observed_at=NOW) for c in pages(items, page)]
        elapsed = time.perf_counter() - started
        appended = sum(len(r.new_snapshots) for r in results)
        assert appended == len(items), (appended, len(items))
        assert not any(r.quarantined for r in results), "a record was not posted"
        return appended / elapsed
    finally:
        store.close()


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg

    name = f"tally_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# A path's planner for the source named: each run appends under a new source name.
PlannerFor = Callable[[str], Callable[..., Any]]


def bench(
    kind: str, rows: int, page: int, rounds: int, planners: dict[str, PlannerFor]
) -> list[str]:
    """Alternate the paths for ``rounds`` rounds (new objects each time); report medians."""
    rates: dict[str, list[float]] = {"plain": [], **{label: [] for label in planners}}
    with database(kind) as url:
        upgrade(url)
        for n in range(rounds):
            items = records(rows, "SUCCESS")
            rates["plain"].append(run_plain(url, items, page, f"bench_plain_{n}"))
            for label, planner_for in planners.items():
                source = f"aurpay-{n}-{label.split()[0]}"  # new objects for every run
                fresh = [RawRecord(source, r.kind, r.external_id, r.payload) for r in items]
                rates[label].append(run_ledger(url, fresh, page, planner_for(source)))
    plain = statistics.median(rates["plain"])
    return [
        f"| {kind} | {label} | {statistics.median(rates[label]):,.0f} | {plain:,.0f} | "
        f"{statistics.median(rates[label]) / plain:.2f} |"
        for label in planners
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per path")
    args = parser.parse_args()
    planners: dict[str, PlannerFor] = {
        "no journal": lambda source: lambda *_: [],
        # Aurpay's derivers under this run's source name
        "journal planner": lambda source: journal_planner(deriver_table({source: DERIVERS})),
    }
    print("| database | append path | ledger snapshots/s | plain inserts/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for kind in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        for line in bench(kind, args.rows, args.page, args.rounds, planners):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
