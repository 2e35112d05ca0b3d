"""Sync benchmarks against the Aurpay sandbox (a script, not a test): one mode per command.

    .venv/bin/python benchmarks/sync_bench.py full --orders 5000 [--db postgres] [--rps N]
    .venv/bin/python benchmarks/sync_bench.py rps --orders 2000 --latency-ms 50 --rps 20
    .venv/bin/python benchmarks/sync_bench.py incremental --orders 5000
    .venv/bin/python benchmarks/sync_bench.py memory --orders 10000 50000 100000

Requests are counted at the sandbox, from the ``sandbox_request`` log line it writes for each
API request; ``rps`` reports the mean per whole wall-clock second (the limiter's unit) and the
busiest sliding one-second window. ``memory`` runs each sync in a child process (the sandbox
stays in this one, so its world is not counted) and reports the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers (truth check)

from append_bench import database  # noqa: E402  (same folder: fresh SQLite/PostgreSQL DBs)

from ledger.storage.engine import upgrade  # noqa: E402
from sandbox.aurpay import RunningSandbox, SandboxConfig, start_sandbox  # noqa: E402
from tests.helpers.ledger_view import truth_problems  # noqa: E402
from tests.helpers.sandbox import sandbox_settings  # noqa: E402
from worker.app.session import worker_session  # noqa: E402
from worker.sync.once import sync_once  # noqa: E402
from worker.sync.state import RunSummary  # noqa: E402

UNLIMITED_RPS = 100_000


@dataclass
class RequestCounter:
    """A structlog processor that counts the sandbox's API requests and drops every log line."""

    times: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        if event.get("event") == "sandbox_request":
            with self._lock:
                self.times.append(time.time())  # wall clock: the limiter's buckets use it too
        raise structlog.DropEvent

    def reset(self) -> None:
        with self._lock:
            self.times.clear()

    def per_second(self) -> float:
        """Mean requests per whole wall-clock second, leaving out the partial first and last
        seconds (the limiter counts per such second)."""
        seconds = Counter(int(t) for t in self.times)
        inner = [seconds[s] for s in range(min(seconds) + 1, max(seconds))] if seconds else []
        return sum(inner) / len(inner) if inner else 0.0

    def busiest_window(self) -> int:
        """The most requests in any sliding one-second window."""
        times, most, start = sorted(self.times), 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most


COUNTER = RequestCounter()


@contextmanager
def migrated_database(kind: str) -> Iterator[str]:
    """A fresh database (``append_bench.database``) with the schema in place."""
    with database(kind) as url:
        upgrade(url)
        yield url


@contextmanager
def sandbox(args: argparse.Namespace, orders: int | None = None) -> Iterator[RunningSandbox]:
    started = time.monotonic()
    config = SandboxConfig(seed=args.seed, orders=orders or args.orders, latency_ms=args.latency_ms)
    with start_sandbox(config) as running:
        print(f"# sandbox: {config.orders} orders generated in {time.monotonic() - started:.1f}s")
        yield running


def timed_sync(settings: Any, *modes: str) -> list[tuple[RunSummary, float, int]]:
    """Run syncs one after the other in one session: (summary, seconds, requests) each."""
    results = []
    with worker_session(settings) as session:
        for mode in modes:
            COUNTER.reset()
            started = time.monotonic()
            report = sync_once(
                session.runtime,
                session.actors,
                session.worker,
                sources=["aurpay"],
                mode=mode,
                timeout=3600,
            )
            elapsed = time.monotonic() - started
            if not report.ok:
                raise SystemExit(report.failure())
            results.append((report.summaries[0], elapsed, len(COUNTER.times)))
    return results


def settings_for(args: argparse.Namespace, running: RunningSandbox, url: str) -> Any:
    return sandbox_settings(
        running,
        url,
        aurpay_requests_per_second=args.rps,
        aurpay_max_concurrency=args.concurrency,
        aurpay_page_size=args.page_size,
        tally_worker_threads=args.threads,
    )


def run_full(args: argparse.Namespace) -> None:
    with sandbox(args) as running, migrated_database(args.db) as url:
        [(s, seconds, requests)] = timed_sync(settings_for(args, running, url), "full")
        print(
            f"full db={args.db} orders={args.orders} pages={s.pages} snapshots={s.new_snapshots} "
            f"journal={s.journal_entries} requests={requests} seconds={seconds:.2f} "
            f"orders_per_s={args.orders / seconds:.0f} requests_per_s={requests / seconds:.1f}"
        )
        if args.check:
            check(running, url)


def run_rps(args: argparse.Namespace) -> None:
    with sandbox(args) as running, migrated_database(args.db) as url:
        [(_, seconds, requests)] = timed_sync(settings_for(args, running, url), "full")
        achieved = COUNTER.per_second()
        print(
            f"rps latency_ms={args.latency_ms} limit={args.rps} concurrency={args.concurrency} "
            f"threads={args.threads} orders={args.orders} requests={requests} "
            f"seconds={seconds:.2f} achieved_rps={achieved:.2f} "
            f"of_limit={100 * achieved / args.rps:.0f}% "
            f"busiest_1s_window={COUNTER.busiest_window()} orders_per_s={args.orders / seconds:.0f}"
        )


def run_incremental(args: argparse.Namespace) -> None:
    with sandbox(args) as running, migrated_database(args.db) as url:
        settings = settings_for(args, running, url)
        (_, _, full_requests), (quiet, seconds, requests) = timed_sync(
            settings, "full", "incremental"
        )
        print(
            f"incremental orders={args.orders} full_requests={full_requests} "
            f"quiet_pages={quiet.pages} quiet_requests={requests} seconds={seconds:.2f}"
        )
        running.world.add_orders(args.new)
        [(busy, seconds, requests)] = timed_sync(settings, "incremental")
        print(
            f"incremental after {args.new} new orders: pages={busy.pages} "
            f"new_snapshots={busy.new_snapshots} requests={requests} seconds={seconds:.2f}"
        )


def run_memory(args: argparse.Namespace) -> None:
    for orders in args.orders_list:
        with sandbox(args, orders) as running, migrated_database(args.db) as url:
            child = subprocess.run(
                [sys.executable, __file__, "memory-child", running.base_url, url],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **child_env(args)},
            )
            if child.returncode != 0:
                raise SystemExit(child.stderr[-2000:])
            result = json.loads(child.stdout.strip().splitlines()[-1])
            mb = {k: f"{v / 1024:.0f}" for k, v in result.items() if k.endswith("_kb")}
            print(
                f"memory orders={orders} maxrss_mb={mb['maxrss_kb']} "
                f"rss_before_sync_mb={mb['before_kb']} peak_during_sync_mb={mb['sync_peak_kb']} "
                f"rss_after_sync_mb={mb['end_rss_kb']} seconds={result['seconds']:.1f} "
                f"snapshots={result['snapshots']}"
            )


def child_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        "AURPAY_REQUESTS_PER_SECOND": str(args.rps),
        "AURPAY_MAX_CONCURRENCY": str(args.concurrency),
        "AURPAY_PAGE_SIZE": str(args.page_size),
        "TALLY_WORKER_THREADS": str(args.threads),
    }


def memory_child(base_url: str, url: str) -> None:
    """The measured process: one full sync, then its own peak RSS as a JSON line."""
    from worker.config import load_settings
    from worker.gateways.aurpay.settings import SANDBOX_API_KEY

    settings = load_settings(
        aurpay_base_url=base_url, aurpay_api_key=SANDBOX_API_KEY, database_url=url
    )
    before = proc_status_kb("VmRSS")
    reset_peak_rss()
    started = time.monotonic()
    [(summary, _, _)] = timed_sync(settings, "full")
    print(
        json.dumps(
            {
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "sync_peak_kb": proc_status_kb("VmHWM"),
                "before_kb": before,
                "end_rss_kb": proc_status_kb("VmRSS"),
                "seconds": time.monotonic() - started,
                "snapshots": summary.new_snapshots,
            }
        )
    )


def proc_status_kb(name: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak since start or the last reset), Linux only."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Restart ``VmHWM`` from the current RSS (Linux 4.0+): the imports' peak is not counted."""
    Path("/proc/self/clear_refs").write_text("5")


def check(running: RunningSandbox, url: str) -> None:
    from ledger.precision import PrecisionTable
    from ledger.storage.open import open_ledger

    store = open_ledger(url, PrecisionTable())
    try:
        problems = truth_problems(store, running.world)
    finally:
        store.close()
    print("check: ledger equals the sandbox's truth" if not problems else f"check: {problems}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    child = sub.add_parser("memory-child")
    child.add_argument("base_url")
    child.add_argument("url")
    for mode, rps, latency in (
        ("full", UNLIMITED_RPS, 0),
        ("rps", 20, 50),
        ("incremental", UNLIMITED_RPS, 0),
        ("memory", UNLIMITED_RPS, 0),
    ):
        p = sub.add_parser(mode)
        if mode == "memory":
            p.add_argument("--orders", type=int, nargs="+", dest="orders_list", default=[10_000])
        else:
            p.add_argument("--orders", type=int, default=5000)
        p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
        p.add_argument("--rps", type=int, default=rps, help="AURPAY_REQUESTS_PER_SECOND")
        p.add_argument("--latency-ms", type=int, default=latency)
        p.add_argument("--concurrency", type=int, default=4, help="AURPAY_MAX_CONCURRENCY")
        p.add_argument("--threads", type=int, default=4, help="TALLY_WORKER_THREADS")
        p.add_argument("--page-size", type=int, default=100)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--new", type=int, default=50, help="incremental: orders added")
        p.add_argument("--check", action="store_true", help="full: compare with the truth")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    structlog.configure(processors=[COUNTER])
    args = parse(argv)
    if args.mode == "memory-child":
        memory_child(args.base_url, args.url)
        return
    {"full": run_full, "rps": run_rps, "incremental": run_incremental, "memory": run_memory}[
        args.mode
    ](args)


if __name__ == "__main__":
    main(sys.argv[1:])
