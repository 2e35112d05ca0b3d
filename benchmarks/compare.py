"""tally's full sync against the least a sync can do, on one world, in one command (issue 14).

    .venv/bin/python benchmarks/compare.py                      # 5,000 orders, 0/5/20 ms, both DBs
    .venv/bin/python benchmarks/compare.py --orders 2000 --latency-ms 0 --db sqlite
    .venv/bin/python benchmarks/compare.py --write              # also rewrite BENCHMARKS.md's table

For each latency one Aurpay sandbox (this process, a real HTTP server, the latency injected per
request) serves one generated world; for each database each engine syncs it in a child process
of its own into a fresh database, one after the other, so CPU time and peak memory are the
sync's alone:

- ``minimal``: the least a sync can do, written here: the order and transaction lists page by
  page, each REFUNDED order's refund-info right after its page, exact decimals, raw JSON rows
  inserted one transaction per page. Sequential, as a hand-written script would be.
- ``tally``: ``tally sync --once`` (``worker_session`` + ``sync_once``) with the rate limit
  lifted and ``--concurrency`` requests in flight: ledger, hash chain, journal, quarantine
  checks and the post-sync reconcile included.
- ``tally-per-object`` (``--with-per-object``): tally with one message and one transaction per
  follow-up, the engine before issue 14, for the before/after figure.
- ``dlt`` (``--dlt-python``, or ``COMPARE_DLT_PYTHON``: a python of a separate venv with dlt
  and duckdb, never a dependency of tally): ``dlt_pipeline.py``, an idiomatic dlt pipeline
  (``RESTClient``, merge on the ids, a refund-info transformer) into DuckDB, once per latency.
  The summary adds tally (SQLite) against it and the types dlt gave the refund amounts.
- ``--processes 1 2 4``: on Redis + PostgreSQL, that many ``tally worker`` processes share one
  full scan (sent as the scheduler sends it); wall time from the send until every queue is idle
  (the reconcile included), at ``--processes-latency-ms`` (20).

Requests are counted at the sandbox. Ratios are the minimal sync's wall time over the engine's
(above 1: faster than the minimal sync). ``--rounds N`` runs every engine N times, in turn, and
reports each figure's median with the range of the wall times: on a shared machine one run's
ratio can swing by a third. A benchmark, never a test: the machine is shared, so
the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync_bench import COUNTER, migrated_database, proc_status_kb, reset_peak_rss  # noqa: E402

from worker.gateways.aurpay.settings import SANDBOX_API_KEY  # noqa: E402

ENGINES = ("minimal", "tally")
DLT_SCRIPT = Path(__file__).resolve().with_name("dlt_pipeline.py")
BEGIN, END = "<!-- compare.py:begin -->", "<!-- compare.py:end -->"
ORDER_LIST, TX_LIST = "/api/v2/order/", "/api/v2/tx"
REFUND_INFO = "/api/v2/order/refund-info/{}"


@dataclass(frozen=True)
class Result:
    latency_ms: int
    db: str
    engine: str
    seconds: float
    cpu_seconds: float
    peak_mb: float
    objects: int
    requests: int
    spread: tuple[float, float] | None = None  # (fastest, slowest) seconds of several rounds

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_seconds / max(self.objects, 1)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- the children: one sync each, measured in their own process


def minimal_sync(base_url: str, url: str, page_size: int) -> int:
    """The least a sync can do: sequential pages and refund-infos, raw rows, exact decimals."""
    import httpx
    import simplejson
    from sqlalchemy import create_engine, event, text

    engine = create_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def durable(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()  # the same durability as the ledger's SQLite
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

    insert = text(
        "INSERT INTO raw_object (kind, external_id, payload) VALUES (:kind, :id, :payload) "
        "ON CONFLICT DO NOTHING"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE raw_object (kind VARCHAR(32), external_id VARCHAR(128), "
            "payload TEXT, PRIMARY KEY (kind, external_id))"
        )
    objects = 0

    def data(answer: httpx.Response) -> Any:
        answer.raise_for_status()
        return simplejson.loads(answer.text, use_decimal=True)["data"]

    def row(kind: str, external_id: str, payload: Any) -> dict[str, str]:
        return {"kind": kind, "id": external_id, "payload": simplejson.dumps(payload)}

    with httpx.Client(base_url=base_url, headers={"API-Key": SANDBOX_API_KEY}) as http:
        for kind, path, key in (("order", ORDER_LIST, "order_id"), ("tx", TX_LIST, "tx_id")):
            number = 1
            while True:
                page = data(http.get(path, params={"page": number, "size": page_size}))
                rows = [row(kind, item[key], item) for item in page["data"]]
                for item in page["data"]:
                    if kind == "order" and item.get("status") == "REFUNDED":
                        info = data(http.get(REFUND_INFO.format(item["order_id"])))
                        if info:
                            rows.append(row("refund", item["order_id"], info))
                if rows:
                    with engine.begin() as conn:
                        conn.execute(insert, rows)
                objects += len(rows)
                if number >= page["max_page"] or not page["data"]:
                    break
                number += 1
    engine.dispose()
    return objects


def tally_sync(base_url: str, url: str, args: argparse.Namespace, *, per_object: bool) -> int:
    """``tally sync --once`` of the sandbox, limit lifted: the new snapshots it stored."""
    from worker.app.session import worker_session
    from worker.config import load_settings
    from worker.sync import engine
    from worker.sync.once import sync_once

    engine.INLINE_FOLLOW_UPS = not per_object
    settings = load_settings(
        aurpay_base_url=base_url,
        aurpay_api_key=SANDBOX_API_KEY,
        database_url=url,
        aurpay_requests_per_second=100_000,
        aurpay_max_concurrency=args.concurrency,
        aurpay_page_size=args.page_size,
        tally_worker_threads=args.threads,
    )
    with worker_session(settings) as session:
        report = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=["aurpay"],
            mode="full",
            timeout=3600,
        )
    if not report.ok:
        raise SystemExit(report.failure())
    return report.summaries[0].new_snapshots


def child(args: argparse.Namespace) -> None:
    structlog.configure(processors=[COUNTER])  # no log output: both engines alike
    reset_peak_rss()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    if args.engine == "minimal":
        objects = minimal_sync(args.base_url, args.url, args.page_size)
    else:
        objects = tally_sync(
            args.base_url, args.url, args, per_object=args.engine == "tally-per-object"
        )
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = proc_status_kb("VmHWM") / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak, "objects": objects}))


# --- the parent: worlds, databases, children, figures


def run_one(args: argparse.Namespace, base_url: str, latency: int, db: str, name: str) -> Result:
    with migrated_database(db) as url:
        argv = [sys.executable, __file__, "child", name, base_url, url]
        argv += ["--concurrency", str(args.concurrency), "--threads", str(args.threads)]
        argv += ["--page-size", str(args.page_size)]
        out, requests = run_child(argv, f"{name}-{latency}ms-{db}")
    result = Result(
        latency, db, name, out["seconds"], out["cpu"], out["peak_mb"], out["objects"], requests
    )
    print(line(result), flush=True)
    return result


def run_dlt(
    args: argparse.Namespace, base_url: str, latency: int, types: dict[int, dict[str, str]]
) -> Result:
    """The dlt pipeline, in the dlt venv's python, into a fresh DuckDB: its row; the types it
    gave the amounts go into ``types`` by latency."""
    with tempfile.TemporaryDirectory(prefix="compare-dlt-") as work:
        argv = [args.dlt_python, str(DLT_SCRIPT), base_url, SANDBOX_API_KEY]
        argv += [str(args.page_size), str(Path(work) / "dlt.duckdb")]
        # cwd: no stray .dlt/ config of the caller's directory reaches the pipeline.
        env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}  # no calls home
        out, requests = run_child(argv, f"dlt-{latency}ms-duckdb", cwd=work, env=env)
    result = Result(
        latency,
        "duckdb",
        "dlt",
        out["seconds"],
        out["cpu"],
        out["peak_mb"],
        out["objects"],
        requests,
    )
    print(line(result), f"amount_types={out.get('amount_types')}", flush=True)
    types[latency] = out.get("amount_types", {})
    return result


def run_child(
    argv: list[str], label: str, cwd: str | None = None, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], int]:
    """Run one measured child: its JSON line and the requests the sandbox counted meanwhile."""
    COUNTER.reset()
    spy = os.environ.get("COMPARE_PY_SPY")  # a py-spy binary: profile the child (raw)
    if spy:
        argv = [
            spy,
            "record",
            *os.environ.get("COMPARE_PY_SPY_ARGS", "--gil").split(),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            f"/tmp/compare-{label}.txt",
            "--",
            *argv,
        ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    out = json.loads([t for t in done.stdout.splitlines() if t.startswith("{")][-1])
    return out, len(COUNTER.times)


def line(r: Result) -> str:
    return (
        f"latency={r.latency_ms}ms db={r.db} engine={r.engine} seconds={r.seconds:.2f} "
        f"objects={r.objects} requests={r.requests} rps={r.requests_per_second:.0f} "
        f"cpu_s_per_1000={r.cpu_per_1000:.2f} peak_mb={r.peak_mb:.0f}"
    )


def table(results: list[Result]) -> list[str]:
    minimal = {(r.latency_ms, r.db): r for r in results if r.engine == "minimal"}
    # Scale-out rows compare with one process (the ratio column: one process ÷ N).
    minimal |= {(r.latency_ms, r.db): r for r in results if r.engine == "tally ×1 processes"}
    rows = [
        "| latency | database | engine | seconds | minimal (or ×1) ÷ engine "
        "| CPU s / 1,000 objects | peak MB | objects | requests | requests/s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rounds = any(r.spread for r in results)
    if rounds:  # medians of rounds: the wall times' range after the median
        rows[0] = rows[0].replace("| seconds |", "| seconds (median) | range |")
        rows[1] += "---:|"
    for r in results:
        # dlt writes to its own DuckDB: against the minimal sync on SQLite (else PostgreSQL).
        base = minimal.get((r.latency_ms, r.db)) or next(
            (
                minimal[r.latency_ms, db]
                for db in ("sqlite", "postgres")
                if (r.latency_ms, db) in minimal
            ),
            None,
        )
        ratio = f"{base.seconds / r.seconds:.2f}×" if base and r.seconds else "—"
        # Scale-out runs are measured from outside the workers: no CPU or memory figure.
        cpu = f"{r.cpu_per_1000:.2f}" if r.cpu_seconds else "—"
        peak = f"{r.peak_mb:.0f}" if r.peak_mb else "—"
        spread = f" {r.spread[0]:.2f}–{r.spread[1]:.2f} |" if r.spread else " — |"
        rows.append(
            f"| {r.latency_ms} ms | {r.db} | {r.engine} | {r.seconds:.2f} |"
            f"{spread if rounds else ''} {ratio} "
            f"| {cpu} | {peak} | {r.objects:,} | {r.requests:,} | {r.requests_per_second:.0f} |"
        )
    return rows


def median(runs: list[Result]) -> Result:
    """One row for several runs of one engine: each figure's median, the wall times' range."""
    if len(runs) == 1:
        return runs[0]

    def mid(values: list[float]) -> float:
        ordered = sorted(values)
        half = len(ordered) // 2
        return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2

    seconds = [r.seconds for r in runs]
    return Result(
        runs[0].latency_ms,
        runs[0].db,
        runs[0].engine,
        mid(seconds),
        mid([r.cpu_seconds for r in runs]),
        mid([r.peak_mb for r in runs]),
        runs[0].objects,
        int(mid([r.requests for r in runs])),
        (min(seconds), max(seconds)),
    )


def rounds_of(count: int, runners: list[Any]) -> list[Result]:
    """Each runner ``count`` times, in turn (a slow spell of the machine hits all alike)."""
    runs: dict[int, list[Result]] = {}
    for _ in range(count):
        for n, runner in enumerate(runners):
            runs.setdefault(n, []).append(runner())
    return [median(runs[n]) for n in range(len(runners))]


def scale_out(args: argparse.Namespace, base_url: str, latency: int, count: int) -> Result:
    """``count`` worker processes on Redis + PostgreSQL share one full scan: its wall time."""
    import uuid

    from tests.helpers.processes import TallyProcess, stop_all
    from worker.broker import setup_broker, wait_idle
    from worker.config import load_settings
    from worker.redis_client import connect_redis
    from worker.sync.actors import QUEUES, declare_actors
    from worker.sync.once import new_run_id

    namespace = f"tally-compare-{uuid.uuid4().hex[:10]}"
    with migrated_database("postgres") as url, tempfile.TemporaryDirectory() as logs:
        env = {
            "AURPAY_BASE_URL": base_url,
            "AURPAY_API_KEY": SANDBOX_API_KEY,
            "AURPAY_REQUESTS_PER_SECOND": "100000",
            "AURPAY_MAX_CONCURRENCY": str(args.concurrency),
            "AURPAY_PAGE_SIZE": str(args.page_size),
            "DATABASE_URL": url,
            "REDIS_URL": args.redis_url,
            "REDIS_NAMESPACE": namespace,
            "TALLY_WORKER_THREADS": str(args.threads),
            "TALLY_LOG_FORMAT": "json",
        }
        workers = [
            TallyProcess(["worker"], env, Path(logs) / f"worker-{n}.log") for n in range(count)
        ]
        settings = load_settings(redis_url=args.redis_url)
        client = connect_redis(settings)
        try:
            for worker in workers:
                worker.wait_for(lambda w=worker: w.proc.poll() is None and _started(w), 60)
            broker = setup_broker(settings, client, namespace=namespace)
            actors = declare_actors(broker)
            COUNTER.reset()
            started = time.monotonic()
            run_id = new_run_id("aurpay", "full")
            for feed in ("orders", "transactions"):
                actors.sync_feed.send("aurpay", feed, "full", run_id)
            time.sleep(0.5)  # the first messages are fetched
            wait_idle(broker, QUEUES, timeout=3600)
            seconds = time.monotonic() - started
        finally:
            stop_all(workers)
            if client is not None:
                keys = list(client.scan_iter(f"{namespace}*"))
                if keys:
                    client.delete(*keys)
                client.close()
        objects = _snapshots(url)
    result = Result(
        latency,
        "postgres+redis",
        f"tally ×{count} processes",
        seconds,
        0.0,
        0.0,
        objects,
        len(COUNTER.times),
    )
    print(line(result), flush=True)
    return result


def _started(worker: Any) -> bool:
    return any(e.get("event") == "tally_started" for e in worker.events())


def _snapshots(url: str) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM ledger_snapshot").scalar_one())
    finally:
        engine.dispose()


def machine() -> str:
    cpu = "unknown CPU"
    for text in Path("/proc/cpuinfo").read_text().splitlines():
        if text.startswith("model name"):
            cpu = text.split(":", 1)[1].strip()
            break
    mem = proc_meminfo_gb()
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {mem:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def proc_meminfo_gb() -> float:
    for text in Path("/proc/meminfo").read_text().splitlines():
        if text.startswith("MemTotal:"):
            return int(text.split()[1]) / 1024 / 1024
    return 0.0


def against_dlt(results: list[Result], types: dict[int, dict[str, str]]) -> list[str]:
    """Under the table: tally (SQLite, else PostgreSQL) against dlt per latency, dlt's types."""
    rows = []
    dlt = {r.latency_ms: r for r in results if r.engine == "dlt"}
    for latency, theirs in dlt.items():
        ours = next(
            (
                r
                for db in ("sqlite", "postgres")
                for r in results
                if (r.latency_ms, r.db, r.engine) == (latency, db, "tally")
            ),
            None,
        )
        if ours and ours.seconds and theirs.seconds:
            ratio = theirs.seconds / ours.seconds
            verdict = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
            rows.append(
                f"- tally vs dlt at {latency} ms: {verdict} "
                f"(tally on {ours.db} {ours.seconds:.2f} s, dlt on DuckDB {theirs.seconds:.2f} s)"
            )
    for latency, kinds in types.items():
        shown = ", ".join(f"{name} {kind}" for name, kind in sorted(kinds.items())) or "none"
        rows.append(
            f"- dlt's DuckDB types for the refund amounts at {latency} ms: {shown} "
            "(tally and the minimal sync keep them as exact decimals)"
        )
    return ["", *rows] if rows else []


def report(
    args: argparse.Namespace,
    results: list[Result],
    load: list[str],
    dlt_types: dict[int, dict[str, str]] | None = None,
) -> str:
    command = "python benchmarks/compare.py " + " ".join(args.argv)
    return "\n".join(
        [
            BEGIN,
            f"- Command: `{command.strip()}`",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}",
            f"- World: {args.orders:,} orders (seed {args.seed}), page size {args.page_size}; "
            f"tally: {args.threads} worker threads, AURPAY_MAX_CONCURRENCY={args.concurrency}, "
            "rate limit lifted",
            f"- Load average (1/5/15 min) before and after: {load[0]} → {load[-1]} "
            "(other engineers' runs share the 2 cores)",
            "",
            *table(results),
            *against_dlt(results, dlt_types or {}),
            END,
        ]
    )


def write(report_text: str, path: Path) -> None:
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: report_text, text)
    else:
        text = text.rstrip("\n") + "\n\n## Full sync against the least work possible\n\n"
        text += report_text + "\n"
    path.write_text(text)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str]) -> None:
    args = parse(argv)
    if args.mode == "child":
        child(args)
        return
    from sandbox.aurpay import SandboxConfig, start_sandbox

    structlog.configure(processors=[COUNTER])
    engines = [*ENGINES, *(["tally-per-object"] if args.with_per_object else [])]
    results: list[Result] = []
    dlt_types: dict[int, dict[str, str]] = {}
    if not args.dlt_python:
        print("dlt: skipped (no --dlt-python and COMPARE_DLT_PYTHON unset)", flush=True)
    load = [loadavg()]
    for latency in args.latency_ms:
        config = SandboxConfig(seed=args.seed, orders=args.orders, latency_ms=latency)
        with start_sandbox(config) as running:
            url = running.base_url
            for db in args.db:
                runners = [partial(run_one, args, url, latency, db, name) for name in engines]
                results += rounds_of(args.rounds, runners)
            if args.dlt_python:  # one DuckDB of its own, whatever --db says
                dlt = partial(run_dlt, args, url, latency, dlt_types)
                results += rounds_of(args.rounds, [dlt])
            if latency == args.processes_latency_ms:
                runners = [partial(scale_out, args, url, latency, n) for n in args.processes]
                results += rounds_of(args.rounds, runners)
    load.append(loadavg())
    text = report(args, results, load, dlt_types)
    print(text)
    if args.write:
        write(text, ROOT / "BENCHMARKS.md")
        print("wrote BENCHMARKS.md")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    kid = sub.add_parser("child")
    kid.add_argument("engine", choices=(*ENGINES, "tally-per-object"))
    kid.add_argument("base_url")
    kid.add_argument("url")
    for p in (parser, kid):
        p.add_argument("--concurrency", type=int, default=8, help="AURPAY_MAX_CONCURRENCY")
        p.add_argument("--threads", type=int, default=4, help="TALLY_WORKER_THREADS")
        p.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each engine: medians")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 5, 20])
    parser.add_argument(
        "--db", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--with-per-object", action="store_true", help="also the old engine")
    parser.add_argument("--processes", type=int, nargs="*", default=[], help="e.g. 1 2 4")
    parser.add_argument("--processes-latency-ms", type=int, default=20, help="one of the above")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md's table")
    parser.add_argument(
        "--dlt-python",
        default=os.environ.get("COMPARE_DLT_PYTHON") or None,
        help="python of a venv with dlt and duckdb: also run benchmarks/dlt_pipeline.py",
    )
    args = parser.parse_args(argv)
    args.argv = argv
    return args


if __name__ == "__main__":
    main(sys.argv[1:])
