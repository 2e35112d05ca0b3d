"""Reconcile cost: a full run over a ledger of N snapshots, then incremental runs over 1,000 new
ones, for one or more ledger sizes; the incremental cost must not grow with N.

    .venv/bin/python benchmarks/reconcile_bench.py --snapshots 100000 300000 1000000
    .venv/bin/python benchmarks/reconcile_bench.py --snapshots 20000 --out -   # quick run

Each size gets a fresh SQLite file, filled through ``LedgerStore.append`` (hash chain, head
lock, triggers) in big pages with a no-op planner: Aurpay orders and their transactions, one
order in ten refunded (all but the first 50 with refund-info), one in a hundred off by two
units. Then:
a full reconcile, an incremental one with nothing new (the fixed cost: sweep, meta-alerts), and
``--rounds`` incremental ones after appending ``--new`` snapshots each. Writes a markdown report
(machine, date, command, table) to --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.model import RawRecord
from ledger.precision import PrecisionTable
from ledger.storage.engine import make_engine, upgrade
from ledger.storage.store import LedgerStore
from tests.helpers.books import PLANS
from worker.alerts.reconcile import ReconcileContext, reconcile
from worker.config import load_settings
from worker.logging import configure_logging

NOW = datetime(2025, 6, 1, tzinfo=UTC)
UNIT = Decimal("0.000001")  # USDT-TRC20


def payment(i: int) -> list[RawRecord]:
    """Order i and its transaction; every 10th refunded (with refund-info from the 51st on),
    every 100th off by two units."""
    order_id, tx_id = f"2025{i:016d}", f"tx-{i:016d}"
    amount = Decimal(19 + i % 997) + Decimal(i % 10_000) * UNIT
    fee = Decimal("0.19")
    obtained = amount - fee - (2 * UNIT if i % 100 == 7 else 0)
    refunded = i % 10 == 3
    common = {"chain": "TRX", "currency": "USDT-TRC20", "amount": str(amount), "fee": str(fee)}
    order: dict[str, Any] = {
        "order_id": order_id,
        "tx_id": tx_id,
        "status": "REFUNDED" if refunded else "SUCCESS",
        "obtained": str(obtained),
        "create_time": "2025-05-01T00:00:00",
        "update_time": "2025-05-02T00:00:00",
        **common,
    }
    tx = {"tx_id": tx_id, "order_id": order_id, "status": "SUCCESS", "obtained": str(amount - fee)}
    out = [
        RawRecord("aurpay", "order", order_id, order),
        RawRecord("aurpay", "transaction", tx_id, {**tx, **common}),
    ]
    if refunded and i >= 500:  # the first 50 refunded orders still await refund-info
        info = {"order_id": order_id, "chain": "TRX", "currency": "USDT-TRC20",
                "amount": obtained - UNIT, "network_fee": Decimal("1"),
                "obtained": obtained - UNIT - 1}  # fmt: skip
        out.append(RawRecord("aurpay", "refund", order_id, info))
    return out


def stream(start: int, snapshots: int) -> Iterator[RawRecord]:
    """Records of payments start, start+1, … until ``snapshots`` records were produced."""
    made, i = 0, start
    while made < snapshots:
        for record in payment(i)[: snapshots - made]:
            made += 1
            yield record
        i += 1


def fill(store: LedgerStore, first: int, snapshots: int, page: int) -> int:
    """Append ``snapshots`` records in pages; returns the next payment number."""
    batch: list[RawRecord] = []
    last = first
    for record in stream(first, snapshots):
        batch.append(record)
        if record.kind == "order":
            last = int(record.external_id[4:])
        if len(batch) == page:
            store.append(batch, observed_at=NOW)
            batch = []
    if batch:
        store.append(batch, observed_at=NOW)
    return last + 1


def timed(ctx: ReconcileContext, *, full: bool) -> tuple[float, int]:
    started = time.perf_counter()
    report = reconcile(ctx, full=full)
    return time.perf_counter() - started, report.counts["snapshots"]


def measure(size: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        store = LedgerStore(make_engine(url), PrecisionTable(), planner=lambda *_: [])
        try:
            started = time.perf_counter()
            after = fill(store, 0, size, args.page)
            build = time.perf_counter() - started
            clock = NOW + timedelta(days=3)
            settings = load_settings(database_url=url)
            ctx = ReconcileContext.from_settings(store, settings, lambda: clock, PLANS)
            full, full_rows = timed(ctx, full=True)
            idle, _ = timed(ctx, full=False)
            rounds = []
            for _ in range(args.rounds):
                after = fill(store, after, args.new, args.page)
                seconds, rows = timed(ctx, full=False)
                assert rows == args.new, (rows, args.new)
                rounds.append(seconds)
            alerts = len(ctx.alerts.list_alerts())
        finally:
            store.close()
    incremental = statistics.median(rounds)
    return {
        "size": size,
        "build": build,
        "full": full,
        "full_rows": full_rows,
        "idle": idle,
        "incremental": incremental,
        "alerts": alerts,
    }


def report(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    )  # fmt: skip
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Reconcile benchmark",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} cores (nproc), {cpu}, Python {platform.python_version()}",
        "- database: SQLite (WAL, synchronous=FULL), one file per size",
        f"- load average at the end (other work shares this machine): {load}",
        f"- command: `{command}`",
        f"- incremental: median of {args.rounds} runs, each after appending {args.new} snapshots",
        "",
        "| ledger snapshots | build (append) | full reconcile | full rows/s | "
        f"incremental ({args.new} new) | incremental rows/s | idle incremental | "
        "full ÷ incremental | open alerts |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']:,} | {r['build']:.1f} s | {r['full']:.1f} s | "
            f"{r['full_rows'] / r['full']:,.0f} | {r['incremental'] * 1000:.0f} ms | "
            f"{args.new / r['incremental']:,.0f} | {r['idle'] * 1000:.0f} ms | "
            f"{r['full'] / r['incremental']:,.0f}× | {r['alerts']:,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--new", type=int, default=1000, help="snapshots per incremental run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--page", type=int, default=5000, help="records per append")
    parser.add_argument("--out", default="/work/notes/bench-reconcile.md", help="'-': stdout")
    args = parser.parse_args()
    configure_logging("warning")  # reconcile's per-run summary line is not the benchmark
    command = " ".join([".venv/bin/python", "benchmarks/reconcile_bench.py", *sys.argv[1:]])
    results = []
    for size in args.snapshots:
        results.append(measure(size, args))
        print(report(results, args, command).splitlines()[-1], flush=True)
    text = report(results, args, command)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
