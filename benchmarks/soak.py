"""Soak benchmark (issue 17): tally left running against two changing sandboxes, sampled.

    .venv/bin/python benchmarks/soak.py --minutes 60 [--mode both|deployment|embedded] [--write]

Modes (``both`` runs them side by side, each with its own sandboxes and database):

- ``deployment``: ``tally worker``, ``tally scheduler`` and ``tally callbacks`` as separate
  processes on Redis (a key namespace of its own) and PostgreSQL (a database created here and
  dropped at the end);
- ``embedded``: ``tally run`` on a SQLite file, its broker in memory.

The schedule is compressed: an incremental sync and a reconcile every 5 s (12x the default
minute), a full scan every 3 minutes (every minute in runs under 30 minutes), retention
shortened likewise. So one *simulated day* (the incremental ticks of a day at default
intervals) lasts 2 hours of wall time. For the first three quarters of the run the sandboxes
change the world every few seconds (new orders and payments, payments, refunds, refund-info
edits, callbacks and webhooks) while 5% of API requests fail (429, 500, truncated bodies); then
the world stops changing, the ledger must reach the sandboxes' truth (``tests/chaos/judge.py``)
and stay there, and the rest of the run is an idle deployment.

Every few minutes (scaled with ``--minutes``) a sample records, per tally process, RSS, threads,
open file descriptors and TCP connections (PostgreSQL, Redis, HTTP out and in), and, per mode,
rows per table, database size, log bytes, queue depths (the scheduler's ``/metrics``) and sync
durations. At the end: the ledger against the truth, ``tally verify``, the targets of issue 17
judged, a projection per simulated day, SVG charts; ``--write`` puts them in BENCHMARKS.md
between the ``soak`` markers. Exits 1 if the ledger differs from the truth, ``verify`` fails, a
process's memory rises beyond noise or a bookkeeping table keeps growing (what CI checks, with
``tests/soak``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.chaos / tests.helpers (the truth and the processes)
sys.path.insert(0, str(ROOT / "benchmarks"))  # for append_bench, also when imported by a test

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from append_bench import database  # noqa: E402  (same folder: a throwaway PostgreSQL DB)

from ledger import jsonx  # noqa: E402
from ledger.precision import PrecisionTable  # noqa: E402
from ledger.storage.engine import make_engine, upgrade  # noqa: E402
from ledger.storage.open import open_ledger  # noqa: E402
from ledger.storage.retention import KEEP_RUNS  # noqa: E402
from sandbox.aurpay import SandboxConfig, start_sandbox  # noqa: E402
from sandbox.aurpay.generate import PAID_STATUSES  # noqa: E402
from sandbox.ebioro.generate import PAYABLE_STATUSES  # noqa: E402
from sandbox.ebioro.generate import REFUNDABLE_STATUSES as EBIORO_REFUNDABLE  # noqa: E402
from sandbox.ebioro.model import EbioroSandboxConfig  # noqa: E402
from sandbox.ebioro.server import start_sandbox as start_ebioro  # noqa: E402
from tests.chaos.infra import free_port  # noqa: E402
from tests.chaos.judge import Expected, ObjectId, ledger_problems  # noqa: E402
from tests.chaos.upstream import Upstream  # noqa: E402
from tests.helpers.processes import TallyProcess, stop_all  # noqa: E402
from tests.helpers.sandbox import refundable_orders  # noqa: E402
from worker.gateways.aurpay.settings import (  # noqa: E402
    SANDBOX_CALLBACK_SECRET,
    SANDBOX_CALLBACK_TOKEN,
)
from worker.retention.settings import RetentionSettings  # noqa: E402

REDIS_URL = os.environ.get("TALLY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
INCREMENTAL_SECONDS = 5
COMPRESSION = 60 / INCREMENTAL_SECONDS  # default incremental interval / the soak's
SIM_DAY_SECONDS = 86400 / COMPRESSION
# 5% of API requests fail
FAULTS = {"rate_429": 0.02, "rate_500": 0.02, "rate_truncated": 0.01}
BOOKKEEPING = ("sync_run", "sync_run_feed", "sync_run_item", "sync_tick", "sync_lease")
BOOKKEEPING += ("alert_delivery",)
RUN_TABLES = ("sync_run", "sync_run_feed", "sync_run_item")
# at least the outbox's redelivery horizon, so the soak keeps the default
DELIVERIES_SECONDS = RetentionSettings.model_fields["tally_retention_deliveries_seconds"].default
MEMORY_NOISE_MB = 8.0  # a fitted rise below this (or 8% of the RSS) is noise
IDLE_LOG_TARGET = 1_000_000  # bytes per simulated day


def log(mode: str, message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} [{mode}] {message}", flush=True)


# --- the tally processes, seen from /proc


def _tcp_sockets() -> dict[str, tuple[int, int]]:
    """socket inode → (local port, remote port) of every established TCP connection."""
    found = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "01":  # ESTABLISHED
                continue
            local, remote = parts[1].rsplit(":", 1)[1], parts[2].rsplit(":", 1)[1]
            found[parts[9]] = (int(local, 16), int(remote, 16))
    return found


def process_stats(pid: int, ports: dict[int, str], served: set[int]) -> dict[str, Any]:
    """RSS (MB), threads, open fds and established connections by kind of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    sockets = _tcp_sockets()
    conns = dict.fromkeys(("postgres", "redis", "http_out", "http_in", "other"), 0)
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            pair = sockets.get(target[8:-1])
            if pair is None:
                continue
            local, remote = pair
            kind = "http_in" if local in served else ports.get(remote, "other")
            conns[kind] += 1
    return {"rss_mb": round(rss_kb / 1024, 2), "threads": threads, "fds": fds, **conns}


# --- the changing world


@dataclass
class Mutator:
    """Changes both worlds every few seconds, remembering how many versions each changed
    object may have in the ledger: one more per change of its payload as served (an upper
    bound: tally stores one version per distinct payload it observes, and may see two
    changes as one).

    The changed objects are found by comparing every payload before and after each change,
    not from the change's name: one change alters several objects (an Ebioro refund embeds
    its payment as it is now, so paying or refunding a payment also changes each of its
    earlier refunds; a refund-info edit leaves the order alone)."""

    upstream: Upstream
    seed: int
    versions: dict[ObjectId, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    served: dict[ObjectId, bytes] | None = None  # every payload after the last change
    history: dict[ObjectId, list[str]] = field(default_factory=dict)  # changes, in order

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.actions: list[tuple[Callable[[], bool], int]] = [
            (self.add_order, 3),
            (self.pay_order, 2),
            (self.refund_order, 1),
            (self.edit_refund_info, 1),
            (self.add_payment, 2),
            (self.pay_payment, 2),
            (self.refund_payment, 1),
            (self.edit_ebioro_refund, 1),
        ]

    def bump(self, action: str, *objects: ObjectId) -> None:
        for obj in objects:
            self.versions[obj] = self.versions.get(obj, 1) + 1
            self.history.setdefault(obj, []).append(action)

    def step(self) -> None:
        funcs, weights = zip(*self.actions, strict=True)
        action = self.rng.choices(funcs, weights)[0]
        # only this thread changes the worlds, so the payloads after the last change still hold
        before = self.served if self.served is not None else self.upstream.expected().objects
        if action():
            self.counts[action.__name__] = self.counts.get(action.__name__, 0) + 1
            after = self.upstream.expected().objects
            # a new object is version 1 (the default); nothing is ever removed
            changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
            self.bump(action.__name__, *changed)
            before = after
        self.served = before

    # Aurpay
    def add_order(self) -> bool:
        self.upstream.aurpay.world.add_orders(1)
        return True

    def pay_order(self) -> bool:
        world = self.upstream.aurpay.world
        junk = {r.record.get("order_id") for r in world.invalid_records()}
        unpaid = [
            o["order_id"]
            for o in world.truth()["orders"]
            if o.get("status") not in PAID_STATUSES
            and o.get("order_id") not in junk
            and isinstance(o.get("order_id"), str)
        ]
        if not unpaid:
            return False
        order = self.rng.choice(unpaid[-50:])
        world.pay(order)
        return True

    def refund_order(self) -> bool:
        world = self.upstream.aurpay.world
        paid = refundable_orders(world)
        if not paid:
            return False
        order = self.rng.choice(paid)
        world.refund(order, mismatch=False)
        return True

    def edit_refund_info(self) -> bool:
        world = self.upstream.aurpay.world
        refunded = [str(info["order_id"]) for info in world.truth()["refund_infos"]]
        if not refunded:
            return False
        order = self.rng.choice(sorted(refunded))
        info = world.refund_info(order)
        step = PrecisionTable().unit(info["currency"])
        if info["obtained"] <= step:
            return False
        world.update_refund_info(
            order,
            {
                "network_fee": str(info["network_fee"] + step),
                "obtained": str(info["obtained"] - step),
            },
        )
        return True

    # Ebioro
    def add_payment(self) -> bool:
        self.upstream.ebioro.world.add_payments(1, status="open")
        return True

    def pay_payment(self) -> bool:
        world = self.upstream.ebioro.world
        open_ = [p["id"] for p in world.truth()["payments"] if p.get("status") in PAYABLE_STATUSES]
        if not open_:
            return False
        payment = self.rng.choice(open_[-50:])
        world.pay(payment)
        return True

    def refund_payment(self) -> bool:
        world = self.upstream.ebioro.world
        truth = world.truth()
        busy = {
            r["payment"]["id"]
            for r in truth["refunds"]
            if isinstance(r.get("payment"), dict) and r.get("status") != "refunded"
        }
        paid = [
            p["id"]
            for p in truth["payments"]
            if p.get("status") in EBIORO_REFUNDABLE and p["id"] not in busy
        ]
        if not paid:
            return False
        payment = self.rng.choice(paid)
        world.refund_payment(payment)
        return True

    def edit_ebioro_refund(self) -> bool:
        world = self.upstream.ebioro.world
        refunds = [
            r
            for r in world.truth()["refunds"]
            if isinstance(r.get("amount"), dict) and r["amount"].get("value", 0) > 1
        ]
        if not refunds:
            return False
        refund = self.rng.choice(refunds)
        value = world.refund(refund["refund_id"])["amount"]["value"]
        world.update_refund(refund["refund_id"], {"amount": {"value": value - 1}})
        return True

    def expected(self) -> Expected:
        truth = self.upstream.expected()
        truth.versions.update(self.versions)
        return truth


# --- one mode


@dataclass
class Plan:
    """The run's timing, scaled with ``--minutes``."""

    minutes: float

    @property
    def seconds(self) -> float:
        return self.minutes * 60

    @property
    def full_scan(self) -> int:
        return 180 if self.minutes >= 30 else 60

    @property
    def sample_every(self) -> float:
        return max(10.0, self.seconds / 20)

    @property
    def active_seconds(self) -> float:
        """The world changes this long, then stays still until the end."""
        return min(0.75 * self.seconds, self.seconds - 2.5 * self.full_scan)

    def retention(self) -> dict[str, int]:
        short = self.minutes < 30
        return {
            "tally_retention_runs_seconds": 60 if short else 600,
            "tally_retention_ticks_seconds": 60 if short else 300,
            "tally_retention_leases_seconds": 60,
            "tally_retention_prune_interval_seconds": 15 if short else 60,
        }

    def age_limits(self) -> dict[str, float]:
        """Per pruned table, how old a row retention prunes may get: its retention, a prune
        interval (the pruner runs that often) and as much again plus 60 s of slack (the
        pruner waits its turn on a busy worker, and a run's age counts from its start). A
        table nothing prunes still fails a 4-minute run: its oldest row ages with the run."""
        kept = self.retention()
        every = kept["tally_retention_prune_interval_seconds"]
        limits = dict.fromkeys(RUN_TABLES, kept["tally_retention_runs_seconds"])
        limits["sync_tick"] = kept["tally_retention_ticks_seconds"]
        limits["sync_lease"] = kept["tally_retention_leases_seconds"]
        limits["alert_delivery"] = DELIVERIES_SECONDS
        return {table: seconds + 2 * every + 60 for table, seconds in limits.items()}

    @property
    def warm_up(self) -> float:
        """Samples from here on are judged (retention in force, caches filled)."""
        kept = self.retention()
        settle = (
            kept["tally_retention_runs_seconds"] + kept["tally_retention_prune_interval_seconds"]
        )
        return max(0.25 * self.seconds, settle + 15)


class Mode:
    """One deployment under soak: sandboxes, database, tally processes, samples, verdict."""

    def __init__(self, name: str, plan: Plan, workdir: Path, seed: int) -> None:
        self.name, self.plan, self.workdir, self.seed = name, plan, workdir, seed
        self.samples: list[dict[str, Any]] = []
        self.full_scans: dict[str, dict[str, Any]] = {}
        self.events: dict[str, float] = {}
        self.result: dict[str, Any] = {"mode": name}
        self.processes: dict[str, TallyProcess] = {}

    # --- set-up

    @contextmanager
    def database(self) -> Iterator[str]:
        if self.name == "embedded":
            yield f"sqlite:///{self.workdir}/soak.db"
            return
        with database("postgres") as url:  # created here, dropped at the end
            yield url

    @contextmanager
    def redis_namespace(self) -> Iterator[str]:
        namespace = f"tally-soak-{uuid.uuid4().hex[:10]}"
        client = redis.Redis.from_url(REDIS_URL)
        try:
            yield namespace
        finally:
            keys = list(client.scan_iter(f"{namespace}*"))
            if keys:
                client.delete(*keys)
            client.close()

    def run(self) -> dict[str, Any]:
        with ExitStack() as stack:
            aurpay = stack.enter_context(
                start_sandbox(SandboxConfig(seed=self.seed, orders=400, **FAULTS))
            )
            ebioro = stack.enter_context(
                start_ebioro(EbioroSandboxConfig(seed=self.seed + 1, payments=160, **FAULTS))
            )
            upstream = Upstream(aurpay, ebioro)
            url = stack.enter_context(self.database())
            self.url = url
            callback_port, metrics_port = free_port(), free_port()
            env = upstream.env(
                url,
                aurpay_page_size=50,
                ebioro_page_size=50,
                aurpay_callback_token=SANDBOX_CALLBACK_TOKEN,
                aurpay_callback_secret=SANDBOX_CALLBACK_SECRET,
                tally_callback_port=callback_port,
                sync_incremental_interval_seconds=INCREMENTAL_SECONDS,
                tally_reconcile_interval_seconds=INCREMENTAL_SECONDS,
                sync_full_scan_interval_seconds=self.plan.full_scan,
                tally_log_level="info",
                **self.plan.retention(),
            )
            commands = ["run"]
            if self.name == "deployment":
                namespace = stack.enter_context(self.redis_namespace())
                env |= {"REDIS_URL": REDIS_URL, "REDIS_NAMESPACE": namespace}
                upgrade(url)  # the release step
                commands = ["worker", "scheduler", "callbacks"]
            self.ports = {5432: "postgres", 6379: "redis"}
            self.ports |= {int(s.base_url.rsplit(":", 1)[1]): "http_out" for s in (aurpay, ebioro)}
            self.served = {callback_port, metrics_port}
            self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            for command in commands:
                extra = (
                    {"TALLY_METRICS_PORT": str(metrics_port)}
                    if command in ("run", "scheduler")
                    else {}
                )
                self.processes[command] = TallyProcess(
                    [command], env | extra, self.workdir / f"{self.name}-{command}.log"
                )
            stack.callback(lambda: stop_all(list(self.processes.values())))
            for process in self.processes.values():
                process.wait_for_event("tally_started", timeout=120)
            callbacks = f"http://127.0.0.1:{callback_port}/callbacks"
            aurpay.world.set_callbacks(f"{callbacks}/aurpay")
            ebioro.world.set_webhook(f"{callbacks}/ebioro")
            self.engine = make_engine(url)
            stack.callback(self.engine.dispose)
            self.soak(upstream)
            codes = stop_all(list(self.processes.values()))
            self.result["exit_codes"] = dict(zip(self.processes, codes, strict=True))
            self.verdict(upstream, url)
        return self.result

    # --- the run

    def soak(self, upstream: Upstream) -> None:
        mutator = Mutator(upstream, self.seed)
        self.mutator = mutator
        begin = time.monotonic()
        self.begin = begin
        next_sample = begin
        next_check = begin
        converged_at: float | None = None
        log(self.name, f"soaking {self.plan.minutes:g} min: {', '.join(self.processes)}")
        while (now := time.monotonic()) - begin < self.plan.seconds:
            self.check_alive()
            elapsed = now - begin
            if elapsed < self.plan.active_seconds:
                mutator.step()
            elif "calm" not in self.events:
                self.events["calm"] = elapsed
                log(self.name, f"the world stops changing ({mutator.counts})")
            elif converged_at is None and now >= next_check:
                next_check = now + 5
                if not self.ledger_problems(mutator.expected()):
                    converged_at = elapsed
                    self.events["converged"] = elapsed
                    self.idle_from = self.totals()
                    log(
                        self.name,
                        f"ledger = truth after {elapsed - self.events['calm']:.0f} s calm",
                    )
            if now >= next_sample:
                self.sample(elapsed)
                next_sample += self.plan.sample_every
            time.sleep(max(0.0, min(3.0, next_sample - time.monotonic())))
        self.sample(time.monotonic() - begin)
        if converged_at is not None:
            self.idle_to = self.totals()
        self.result["mutations"] = mutator.counts

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.proc.poll() is not None:
                raise AssertionError(f"tally {name} exited:\n{process.tail()}")

    def ledger_problems(self, expected: Expected) -> list[str]:
        store = open_ledger(self.url, PrecisionTable())
        try:
            return ledger_problems(store, expected)
        finally:
            store.close()

    def totals(self) -> dict[str, float]:
        """Log bytes and ledger rows now, and when (for the idle window)."""
        rows = self.rows()
        found = {f"rows:{t}": float(n) for t, n in rows.items() if t.startswith("ledger_")}
        found["log_bytes"] = float(self.log_bytes())
        found["t"] = time.monotonic() - self.begin
        return found

    def log_bytes(self) -> int:
        return sum(p.log_path.stat().st_size for p in self.processes.values())

    def rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            tables = sorted(sa.inspect(conn).get_table_names())
            return {
                t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                for t in tables
                if t != "alembic_version"
            }

    def oldest(self) -> dict[str, dict[str, Any]]:
        """Per pruned table: the age (s) of its oldest row retention prunes (None: no such
        row), by the time the pruner judges it by, and how many rows lost their run (a feed
        or item of a run that is gone: nothing ever prunes those). Left out, as retention
        keeps them whatever their age: each source's newest KEEP_RUNS runs, each job's
        newest tick, deliveries not yet made."""
        now = datetime.now(UTC)

        def age(value: Any) -> float:
            return (now - _utc(value)).total_seconds()

        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            runs: dict[str, list[tuple[datetime, str]]] = {}
            for run_id, source, started in conn.execute(
                sa.text("SELECT run_id, source, started_at FROM sync_run")
            ):
                runs.setdefault(source, []).append((_utc(started), run_id))
            run_age = {}
            for started_runs in runs.values():
                started_runs.sort(reverse=True)
                run_age |= {r: age(started) for started, r in started_runs[KEEP_RUNS:]}
            found["sync_run"] = {"age_s": max(run_age.values(), default=None), "orphans": 0}
            for table in ("sync_run_feed", "sync_run_item"):
                stmt = sa.text(f"SELECT DISTINCT run_id FROM {table}")
                ages = [run_age[r] for r in conn.execute(stmt).scalars() if r in run_age]
                # one statement, one consistent view: a run starting or pruned meanwhile
                # makes no orphan
                stmt = sa.text(
                    f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "
                    "(SELECT 1 FROM sync_run r WHERE r.run_id = t.run_id)"
                )
                orphans = int(conn.execute(stmt).scalar_one())
                found[table] = {"age_s": max(ages, default=None), "orphans": orphans}
            ticks: dict[str, list[tuple[int, Any]]] = {}
            for job, tick, created in conn.execute(
                sa.text("SELECT job, tick, created_at FROM sync_tick")
            ):
                ticks.setdefault(job, []).append((int(tick), created))
            ages = [age(c) for job_ticks in ticks.values() for _, c in sorted(job_ticks)[:-1]]
            found["sync_tick"] = {"age_s": max(ages, default=None), "orphans": 0}
            # a lease is pruned by how long ago it expired
            ages = [age(e) for (e,) in conn.execute(sa.text("SELECT expires_at FROM sync_lease"))]
            found["sync_lease"] = {"age_s": max(ages, default=None), "orphans": 0}
            stmt = sa.text("SELECT delivered_at FROM alert_delivery WHERE delivered_at IS NOT NULL")
            ages = [age(d) for (d,) in conn.execute(stmt)]
            found["alert_delivery"] = {"age_s": max(ages, default=None), "orphans": 0}
        for ages in found.values():
            if ages["age_s"] is not None:
                ages["age_s"] = round(max(0.0, ages["age_s"]), 1)
        return found

    def db_bytes(self) -> int:
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                return int(
                    conn.execute(
                        sa.text("SELECT pg_database_size(current_database())")
                    ).scalar_one()
                )
        path = Path(self.url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    def queues(self) -> dict[str, float]:
        try:
            text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        except OSError:
            return {}
        found = {}
        for line in text.splitlines():
            match = re.match(r'tally_queue_messages_pending\{queue="([^"]+)"\} (\S+)', line)
            if match:
                found[match.group(1)] = float(match.group(2))
        return found

    def sync_durations(self) -> dict[str, Any]:
        """Complete runs' durations: every full scan seen (kept across samples, as retention
        prunes old runs), and the mean incremental run of the last sample interval."""
        since = datetime.now(UTC).timestamp() - self.plan.sample_every
        stmt = sa.text(
            "SELECT r.run_id, r.mode, r.started_at, max(i.done_at) AS done, "
            "count(i.item) AS items, sum(i.pages) AS pages, "
            "(SELECT count(*) FROM sync_run_feed f WHERE f.run_id = r.run_id) AS planned, "
            "(SELECT count(f.finished_at) FROM sync_run_feed f "
            " WHERE f.run_id = r.run_id) AS done_feeds "
            "FROM sync_run r JOIN sync_run_item i ON i.run_id = r.run_id "
            "GROUP BY r.run_id, r.mode, r.started_at"
        )
        incremental = []
        with self.engine.connect() as conn:
            for row in conn.execute(stmt).mappings():
                if not row["planned"] or row["planned"] != row["done_feeds"]:
                    continue
                started, done = _utc(row["started_at"]), _utc(row["done"])
                seconds = (done - started).total_seconds()
                if row["mode"] == "full":
                    self.full_scans.setdefault(
                        row["run_id"],
                        {
                            "source": str(row["run_id"]).split(":", 1)[0],
                            "started": started.isoformat(),
                            "seconds": round(seconds, 2),
                            "items": int(row["items"]),
                            "pages": int(row["pages"] or 0),
                        },
                    )
                elif started.timestamp() >= since:
                    incremental.append(seconds)
        mean = sum(incremental) / len(incremental) if incremental else None
        return {"incremental_runs": len(incremental), "incremental_mean_s": mean}

    def sample(self, elapsed: float) -> None:
        procs = {}
        for name, process in self.processes.items():
            try:
                procs[name] = process_stats(process.proc.pid, self.ports, self.served)
            except (OSError, AttributeError):
                continue
        sample = {
            "t": round(elapsed, 1),
            "processes": procs,
            "rows": self.rows(),
            "oldest": self.oldest(),
            "db_bytes": self.db_bytes(),
            "log_bytes": self.log_bytes(),
            "queues": self.queues(),
            **self.sync_durations(),
        }
        self.samples.append(sample)
        rss = ", ".join(f"{n} {p['rss_mb']:.0f} MB" for n, p in procs.items())
        log(
            self.name,
            f"t={elapsed:.0f}s {rss}; ledger {sample['rows'].get('ledger_snapshot')} "
            f"snapshots; sync_run {sample['rows'].get('sync_run')}, sync_tick "
            f"{sample['rows'].get('sync_tick')}; logs {sample['log_bytes']} B",
        )

    # --- the verdict

    def verdict(self, upstream: Upstream, url: str) -> None:
        problems = self.ledger_problems(self.mutator.expected())
        verify = subprocess.run(
            [sys.executable, "-m", "worker.app.cli", "verify"],
            env={**os.environ, "DATABASE_URL": url, "TALLY_LOG_FORMAT": "json"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        said = (verify.stdout + verify.stderr).strip()
        verify_ok = verify.returncode == 0 and "ledger intact" in said
        self.result |= {
            "ledger_problems": problems,
            "extra_versions": self.version_stories(problems),
            "verify": said.splitlines()[-1][:300] if said else "",
            "verify_ok": verify_ok,
            "samples": self.samples,
            "full_scans": sorted(self.full_scans.values(), key=lambda s: s["started"]),
            "events": self.events,
            "idle": self.idle_window(),
        }
        analyse(self.plan, self.result)

    def version_stories(self, problems: list[str]) -> dict[str, Any]:
        """For each object with more versions than its changes justify: the changes the soak
        made to it and, per stored version, when tally observed it and what differed from
        the version before (to tell an undercount from a version tally should not store)."""
        objects = {}
        for line in problems:
            match = re.match(r"extra versions: (\(.*?\)) has", line)
            if match:
                objects[ast.literal_eval(match.group(1))] = []
        if not objects:
            return {}
        store = open_ledger(self.url, PrecisionTable())
        try:
            for snapshot in store.iter_snapshots():
                obj = (snapshot.source, snapshot.kind, snapshot.external_id)
                if obj in objects:
                    objects[obj].append(snapshot)
        finally:
            store.close()
        stories = {}
        for obj, snapshots in objects.items():
            versions, previous = [], None
            for snapshot in snapshots:
                payload = jsonx.loads(jsonx.canonical(snapshot.payload))
                versions.append(
                    {
                        "seq": snapshot.seq,
                        "version": snapshot.version,
                        "observed_at": str(snapshot.observed_at),
                        "changed": None if previous is None else _apart(previous, payload),
                    }
                )
                previous = payload
            stories[repr(obj)] = {
                "changes": self.mutator.history.get(obj, []),
                "versions": versions,
            }
        return stories

    def idle_window(self) -> dict[str, Any] | None:
        start, end = getattr(self, "idle_from", None), getattr(self, "idle_to", None)
        if start is None or end is None or end["t"] <= start["t"]:
            return None
        seconds = end["t"] - start["t"]
        appended = {k[5:]: int(end[k] - start[k]) for k in start if k.startswith("rows:")}
        log_rate = (end["log_bytes"] - start["log_bytes"]) / seconds
        return {
            "seconds": round(seconds, 1),
            "ledger_rows_appended": appended,
            "log_bytes": int(end["log_bytes"] - start["log_bytes"]),
            "log_bytes_per_sim_day": round(log_rate * SIM_DAY_SECONDS),
        }


def _apart(old: Any, new: Any, path: str = "") -> dict[str, Any]:
    """Where two JSON values differ: dotted path → [old, new] (one level per nested dict)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: dict[str, Any] = {}
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                found |= _apart(old.get(key), new.get(key), f"{path}{key}.")
        return found
    return {path.rstrip("."): [old, new]}


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- analysis


def fit(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var


def analyse(plan: Plan, result: dict[str, Any]) -> None:
    """Slopes, projections per simulated day and the targets, added to ``result``."""
    samples = result["samples"]
    judged = [s for s in samples if s["t"] >= plan.warm_up] or samples[-2:]
    span = max(1.0, judged[-1]["t"] - judged[0]["t"])
    memory = {}
    for name in samples[-1]["processes"]:
        points = [
            (s["t"], s["processes"][name]["rss_mb"]) for s in judged if name in s["processes"]
        ]
        slope = fit(points)
        mean = sum(y for _, y in points) / len(points)
        rise = slope * span
        per_proc = [s["processes"][name] for s in judged if name in s["processes"]]
        memory[name] = {
            "rss_first_mb": samples[0]["processes"].get(name, {}).get("rss_mb"),
            "rss_last_mb": points[-1][1],
            "slope_mb_per_hour": round(slope * 3600, 2),
            "fitted_rise_mb": round(rise, 2),
            "flat": rise <= max(MEMORY_NOISE_MB, 0.08 * mean),
            "threads": sorted({p["threads"] for p in per_proc}),
            "fds": [min(p["fds"] for p in per_proc), max(p["fds"] for p in per_proc)],
            "connections": {
                k: [min(p[k] for p in per_proc), max(p[k] for p in per_proc)]
                for k in ("postgres", "redis", "http_out", "http_in")
            },
        }
    third = max(1, len(judged) // 3)
    # growth while the world changes (the calm phase would understate it)
    active = [s for s in judged if s["t"] <= plan.active_seconds]
    active = active if len(active) >= 2 else judged
    tables = {}
    limits = plan.age_limits()
    for table in samples[-1]["rows"]:
        slope = fit([(s["t"], s["rows"].get(table, 0)) for s in active])
        tables[table] = {
            "rows_last": samples[-1]["rows"][table],
            "growth_per_sim_day": round(slope * SIM_DAY_SECONDS),
            "bookkeeping": table in BOOKKEEPING,
        }
        ages = [s["oldest"][table] for s in judged if table in s.get("oldest", {})]
        if table in limits and ages:
            tables[table] |= retention_kept(ages, limits[table])
        else:
            early = max(s["rows"].get(table, 0) for s in judged[:third])
            late = max(s["rows"].get(table, 0) for s in judged[-third:])
            tables[table]["bounded"] = late <= 1.25 * early + 20
    db_slope = fit([(s["t"], s["db_bytes"]) for s in active])
    log_slope = fit([(s["t"], s["log_bytes"]) for s in active])
    idle = result["idle"]
    targets = {
        "ledger equals the sandboxes' truth": not result["ledger_problems"],
        "tally verify passes": result["verify_ok"],
        "memory flat (every process)": all(m["flat"] for m in memory.values()),
        "bookkeeping tables bounded": all(
            t["bounded"] for t in tables.values() if t["bookkeeping"]
        ),
        "connections and fds constant after warm-up": all(
            m["fds"][1] - m["fds"][0] <= 8 for m in memory.values()
        ),
        "last full scan within 20% of the first (per page)": (tick_ratio(result) or 9.9) <= 1.2,
        "idle: no ledger rows appended": bool(idle)
        and not any(idle["ledger_rows_appended"].values()),
        "idle log volume < 1 MB per simulated day": bool(idle)
        and idle["log_bytes_per_sim_day"] < IDLE_LOG_TARGET,
    }
    result["analysis"] = {
        "judged_from_s": judged[0]["t"],
        "memory": memory,
        "tables": tables,
        "db_growth_per_sim_day_bytes": round(db_slope * SIM_DAY_SECONDS),
        "log_growth_per_sim_day_bytes": round(log_slope * SIM_DAY_SECONDS),
        "db_bytes_last": samples[-1]["db_bytes"],
        "log_bytes_last": samples[-1]["log_bytes"],
        "targets": targets,
    }


def retention_kept(ages: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    """A pruned table is bounded by its retention when, in every judged sample, no row it
    prunes is older than ``limit`` and no row lost its run since the first: then it holds
    the retention window's rows, however many each run brings (a full scan's items grow
    with the world). Its row count is no verdict: that follows the work done in the window."""
    oldest = max((a["age_s"] or 0.0) for a in ages)
    orphans = ages[-1]["orphans"] - ages[0]["orphans"]
    return {
        "oldest_age_s": oldest,
        "age_limit_s": limit,
        "orphans_added": orphans,
        "bounded": oldest <= limit and orphans <= 0,
    }


def scan_ratios(result: dict[str, Any]) -> dict[str, float]:
    """Per source, the last full scan's seconds per page over the first's on a loaded ledger
    (the second scan: the first loads the whole world). Per page, as the world grows during
    the run: the question is whether the hundredth scan is slower for the same work. Shown
    for reading; the target is judged on ``tick_ratio``."""
    ratios = {}
    for source in sorted({s["source"] for s in result["full_scans"]}):
        scans = [s for s in result["full_scans"] if s["source"] == source]
        if len(scans) >= 3:
            first, last = (s["seconds"] / max(1, s["pages"]) for s in (scans[1], scans[-1]))
            ratios[source] = round(last / max(0.001, first), 2)
    return ratios


def tick_ratio(result: dict[str, Any]) -> float | None:
    """The last full scan's seconds per page over the first's on a loaded ledger, a full scan
    being what one scheduler tick starts: every source's scan, begun within seconds of each
    other. They share one worker pool, so a source's own duration measures the other's load
    as much as its own (in the 60-minute run an Ebioro scan of 9 pages waited behind an
    Aurpay scan that grew from 16 to 25 pages); the tick's wall time over all its pages does
    not. None with fewer than three ticks."""
    ticks: list[list[dict[str, Any]]] = []
    for scan in sorted(result["full_scans"], key=lambda s: s["started"]):
        begun = datetime.fromisoformat(scan["started"])
        if ticks and (begun - datetime.fromisoformat(ticks[-1][0]["started"])).total_seconds() < 30:
            ticks[-1].append(scan)
        else:
            ticks.append([scan])
    if len(ticks) < 3:
        return None

    def per_page(tick: list[dict[str, Any]]) -> float:
        starts = [datetime.fromisoformat(s["started"]).timestamp() for s in tick]
        ends = [start + s["seconds"] for start, s in zip(starts, tick, strict=True)]
        return (max(ends) - min(starts)) / max(1, sum(s["pages"] for s in tick))

    return round(per_page(ticks[-1]) / max(0.001, per_page(ticks[1])), 2)


STRICT = (  # what fails the run (and CI)
    "ledger equals the sandboxes' truth",
    "tally verify passes",
    "memory flat (every process)",
    "bookkeeping tables bounded",
)


# --- charts and BENCHMARKS.md


COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def svg_chart(title: str, series: dict[str, list[tuple[float, float]]], ylabel: str) -> str:
    """A line chart (minutes on x) as standalone SVG."""
    width, height, left, right, top, bottom = 720, 300, 60, 170, 30, 40
    xs = [x for pts in series.values() for x, _ in pts] or [0, 1]
    ys = [y for pts in series.values() for _, y in pts] or [0, 1]
    x_max, y_max = max(xs) or 1, (max(ys) or 1) * 1.1
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float, y: float) -> str:
        return f"{left + plot_w * x / x_max:.1f},{top + plot_h * (1 - y / y_max):.1f}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13" font-weight="bold">{title}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">minutes</text>',
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" '
        f'text-anchor="middle">{ylabel}</text>',
    ]
    for i in range(5):
        y = y_max * i / 4
        _, ypx = px(0, y).split(",")
        out.append(f'<text x="{left - 4}" y="{ypx}" text-anchor="end">{_short(y)}</text>')
        out.append(f'<line x1="{left}" y1="{ypx}" x2="{left + plot_w}" y2="{ypx}" stroke="#eee"/>')
        x = x_max * i / 4
        xpx, _ = px(x, 0).split(",")
        out.append(f'<text x="{xpx}" y="{top + plot_h + 14}" text-anchor="middle">{x:.0f}</text>')
    for n, (name, pts) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        line = " ".join(px(x, y) for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{line}"/>')
        ly = top + 14 * n + 6
        out.append(
            f'<line x1="{width - right + 10}" y1="{ly}" x2="{width - right + 28}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        out.append(f'<text x="{width - right + 32}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _short(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def charts(result: dict[str, Any], directory: Path) -> list[str]:
    """Memory and rows over time for one mode; the files written (relative to the repo)."""
    samples = result["samples"]
    memory = {
        name: [
            (s["t"] / 60, s["processes"][name]["rss_mb"]) for s in samples if name in s["processes"]
        ]
        for name in samples[-1]["processes"]
    }
    shown = [t for t in samples[-1]["rows"] if t in BOOKKEEPING or t.startswith("ledger_")]
    rows = {t: [(s["t"] / 60, float(s["rows"].get(t, 0))) for s in samples] for t in shown}
    written = []
    for kind, series, label in (("memory", memory, "RSS (MB)"), ("rows", rows, "rows")):
        path = directory / f"soak-{result['mode']}-{kind}.svg"
        path.write_text(svg_chart(f"{result['mode']}: {kind} over time", series, label))
        written.append(str(path.relative_to(ROOT)))
    return written


def markdown(
    plan: Plan, results: list[dict[str, Any]], command: str, chart_files: list[str]
) -> str:
    lines = [
        "<!-- soak:begin (written by benchmarks/soak.py --write) -->",
        "## Soak (issue 17): months unattended",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d} (2 shared cores, other work running). "
        f"Schedule compressed {COMPRESSION:g}x: incremental sync and reconcile every "
        f"{INCREMENTAL_SECONDS} s, full scan every {plan.full_scan} s, retention "
        + ", ".join(
            f"{k.removeprefix('tally_retention_')}={v}" for k, v in plan.retention().items()
        )
        + f". One simulated day = {SIM_DAY_SECONDS / 60:.0f} min of wall time. The world changes "
        f"for the first {plan.active_seconds / 60:.0f} min (5% of API requests fail), then stays "
        f"still; samples every {plan.sample_every / 60:.1f} min, slopes fitted from "
        f"{plan.warm_up / 60:.0f} min on.",
        "",
    ]
    for result in results:
        a = result["analysis"]
        lines += [f"### {result['mode']}", ""]
        lines += ["| target | met |", "|---|---|"]
        lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in a["targets"].items()]
        lines += [
            "",
            "| process | RSS first → last (MB) | slope (MB/h) | threads | fds "
            "| connections PG / Redis / HTTP out / HTTP in |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in a["memory"].items():
            c = m["connections"]
            conns = " / ".join(f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in c.values())
            lines.append(
                f"| {name} | {m['rss_first_mb']} → {m['rss_last_mb']} | {m['slope_mb_per_hour']:+} "
                f"| {m['threads'][0]}-{m['threads'][-1]} | {m['fds'][0]}-{m['fds'][1]} "
                f"| {conns} |"
            )
        lines += [
            "",
            "| table | rows at the end | growth per simulated day (world changing) | bounded "
            "| oldest row pruned by retention (s) / limit |",
            "|---|---|---|---|---|",
        ]
        for table, t in sorted(a["tables"].items()):
            kind = " (pruned)" if t["bookkeeping"] else ""
            age = f"{t['oldest_age_s']:.0f} / {t['age_limit_s']:.0f}" if "age_limit_s" in t else ""
            lines.append(
                f"| {table}{kind} | {t['rows_last']} | {t['growth_per_sim_day']:+} | "
                f"{'yes' if t['bounded'] else 'no'} | {age} |"
            )
        idle = result["idle"] or {}
        appended = sum((idle.get("ledger_rows_appended") or {}).values())
        per_day = idle.get("log_bytes_per_sim_day", 0) / 1e3
        scans = ", ".join(
            f"{s['source']} {s['seconds']} s/{s['pages']} pages" for s in result["full_scans"]
        )
        lines += [
            "",
            f"- database {a['db_bytes_last'] / 1e6:.1f} MB at the end, "
            f"{a['db_growth_per_sim_day_bytes'] / 1e6:+.2f} MB per simulated day (world "
            f"changing); logs {a['log_bytes_last'] / 1e6:.2f} MB, "
            f"{a['log_growth_per_sim_day_bytes'] / 1e6:+.2f} MB per simulated day",
            f"- idle ({idle.get('seconds', 0) / 60:.0f} min after the ledger reached the truth): "
            f"{idle.get('log_bytes', 'n/a')} log bytes = {per_day:.1f} kB per simulated day; "
            f"ledger rows appended: {appended}",
            f"- full scans in order: {scans}; last / first on a loaded ledger, per page: "
            f"{tick_ratio(result)} for the whole tick (judged), {scan_ratios(result)} per "
            "source",
            f"- mutations: {result.get('mutations')}",
            f"- ledger vs truth: {len(result['ledger_problems'])} differences; "
            f"verify: {result['verify']}",
            "",
        ]
        lines += [f"![{f}]({f})" for f in chart_files if f"-{result['mode']}-" in f]
        lines.append("")
    lines.append("<!-- soak:end -->")
    return "\n".join(lines) + "\n"


def write_benchmarks(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text()
    begin, end = current.find("<!-- soak:begin"), current.find("<!-- soak:end -->")
    if begin >= 0 and end > begin:
        current = current[:begin] + text + current[end + len("<!-- soak:end -->\n") :]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)


def quiet_sandboxes() -> None:
    """The sandboxes log every request; a soak makes hundreds of thousands."""

    def drop(logger: Any, method: str, event: Any) -> Any:
        raise structlog.DropEvent

    structlog.configure(processors=[drop])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--mode", choices=("both", "deployment", "embedded"), default="both")
    parser.add_argument("--out", type=Path, default=None, help="where logs and soak.json go")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md and the charts")
    parser.add_argument("--seed", type=int, default=1701)
    parser.add_argument(
        "--report", type=Path, default=None, help="judge a saved soak.json again (no run)"
    )
    args = parser.parse_args(argv)
    if args.report is not None:
        return conclude(json.loads(args.report.read_text()), args.write)
    if args.minutes < 3:
        parser.error("--minutes must be at least 3")
    quiet_sandboxes()
    plan = Plan(args.minutes)
    out = args.out or Path(f"/tmp/tally-soak-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    names = ["deployment", "embedded"] if args.mode == "both" else [args.mode]
    modes = [Mode(name, plan, out, args.seed + 10 * n) for n, name in enumerate(names)]
    failures: dict[str, BaseException] = {}

    def run(mode: Mode) -> None:
        try:
            mode.run()
        except BaseException as exc:  # reported below; the other mode carries on
            failures[mode.name] = exc
            log(mode.name, f"failed: {exc!r}")

    threads = [threading.Thread(target=run, args=(m,), name=m.name) for m in modes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [m.result for m in modes if "analysis" in m.result]
    report = {
        "minutes": args.minutes,
        "mode": args.mode,
        "results": results,
        "failures": {k: repr(v) for k, v in failures.items()},
    }
    (out / "soak.json").write_text(json.dumps(report, indent=1, default=str))
    log("soak", f"results in {out / 'soak.json'}")
    return conclude(report, args.write)


def conclude(report: dict[str, Any], write: bool) -> int:
    """Judge (again) the results of a run; with ``write``, the charts and BENCHMARKS.md."""
    plan = Plan(report["minutes"])
    results = report["results"]
    for result in results:
        analyse(plan, result)
    ok = not report["failures"]
    for result in results:
        targets = result["analysis"]["targets"]
        for target, met in targets.items():
            log(result["mode"], f"{'ok  ' if met else 'FAIL'} {target}")
        ok = ok and all(targets[t] for t in STRICT)
        for problem in result["ledger_problems"][:10]:
            log(result["mode"], f"  {problem}")
    if write and results:
        files = [f for r in results for f in charts(r, ROOT / "benchmarks")]
        mode = report.get("mode", "both")
        command = f"python benchmarks/soak.py --minutes {report['minutes']:g} --mode {mode} --write"
        write_benchmarks(markdown(plan, results, command, files))
    log("soak", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
