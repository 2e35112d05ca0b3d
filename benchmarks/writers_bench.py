"""Writers in several processes on one PostgreSQL ledger: snapshots/s with 1, 2 and 4 of them,
laying out before the chain-head lock (a draft, the default on PostgreSQL) and under it, and
the share of each writer's time spent holding the lock.

    .venv/bin/python benchmarks/writers_bench.py --rows 8000 --writers 1 2 4 --rounds 2

Each configuration appends the same number of new Aurpay orders (paid, so each posts a journal
entry through Aurpay's derivers), split between its writers, pages of --page records, one
transaction each, into one fresh PostgreSQL database per invocation, so the ledger grows as the
configurations go on; rounds alternate the two layouts so neither always meets the larger one.
The lock share is the time from taking the head row lock to the commit, over the writer's wall
time: what no other writer can do meanwhile, the part that caps how far more writers can go.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.append_bench import NOW, database, pages, records

LAYOUTS = {"draft before the lock": True, "under the lock": False}


def writer(
    url: str, source: str, rows: int, page: int, draft: bool, barrier: Any
) -> tuple[float, float, float]:
    """One process's appends: (started, finished, seconds holding the lock)."""
    from sqlalchemy.engine import Connection

    from ledger.journal.derive import journal_planner
    from ledger.model import RawRecord
    from ledger.precision import PrecisionTable
    from ledger.storage.engine import make_engine
    from ledger.storage.store import LOCK_HEAD, LedgerStore
    from worker.gateways.aurpay.postings import DERIVERS
    from worker.gateways.books import deriver_table

    class Timed(LedgerStore):
        held = 0.0
        locked_at: float | None = None

        def _lay_out(self, conn: Connection, *args: Any, **kwargs: Any) -> Any:
            conn.execute(LOCK_HEAD)  # taken here; the store's own lock statement is then free
            self.locked_at = time.perf_counter()
            return super()._lay_out(conn, *args, **kwargs)

        def append(self, *args: Any, **kwargs: Any) -> Any:
            result = super().append(*args, **kwargs)  # the lock is released with the commit
            if self.locked_at is not None:
                self.held += time.perf_counter() - self.locked_at
                self.locked_at = None
            return result

    items = [RawRecord(source, r.kind, r.external_id, r.payload) for r in records(rows, "SUCCESS")]
    planner = journal_planner(deriver_table({source: DERIVERS}))
    store = Timed(make_engine(url), PrecisionTable(), planner=planner, draft_before_lock=draft)
    try:
        barrier.wait()
        started = time.perf_counter()
        results = [store.append(c, observed_at=NOW) for c in pages(items, page)]
        finished = time.perf_counter()
        appended = sum(len(r.new_snapshots) for r in results)
    finally:
        store.close()
    assert appended == rows, (appended, rows)
    return started, finished, store.held


def _report(out: Any, *args: Any) -> None:
    try:
        out.put(writer(*args))
    except BaseException as exc:  # the parent reports it; a traceback here would be lost
        out.put(f"{type(exc).__name__}: {exc}")
        raise


def run(url: str, count: int, rows: int, page: int, draft: bool, tag: str) -> tuple[float, float]:
    """``count`` writers appending ``rows`` between them: (snapshots/s, mean lock share)."""
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(count), context.SimpleQueue()
    share = rows // count
    procs = [
        context.Process(
            target=_report,
            args=(out, url, f"aurpay-{tag}-{n}", share, page, draft, barrier),
        )
        for n in range(count)
    ]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    if any(proc.exitcode for proc in procs) or any(isinstance(r, str) for r in results):
        raise SystemExit(f"a writer failed: {[r for r in results if isinstance(r, str)]}")
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    locked = statistics.mean(r[2] / (r[1] - r[0]) for r in results)
    return share * count / wall, locked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per layout")
    args = parser.parse_args()
    rates: dict[tuple[str, int], list[float]] = {}
    shares: dict[tuple[str, int], list[float]] = {}
    with database("postgres") as url:
        from ledger.storage.engine import upgrade

        upgrade(url)
        for n in range(args.rounds):
            for count in args.writers:
                for label, draft in LAYOUTS.items():
                    tag = f"{n}-{count}-{int(draft)}"
                    rate, share = run(url, count, args.rows, args.page, draft, tag)
                    rates.setdefault((label, count), []).append(rate)
                    shares.setdefault((label, count), []).append(share)
                    print(f"round {n}: {label}, {count} writers: {rate:,.0f}/s", file=sys.stderr)
    print("| layout | writers | snapshots/s | × one writer | lock held, share of a writer's time |")
    print("|---|---:|---:|---:|---:|")
    for label in LAYOUTS:
        one = statistics.median(rates[(label, args.writers[0])])
        for count in args.writers:
            rate = statistics.median(rates[(label, count)])
            share = statistics.median(shares[(label, count)])
            print(f"| {label} | {count} | {rate:,.0f} | {rate / one:.2f}× | {share:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
