"""Running one chaos scenario: the sandboxes, tally processes (started, killed, stopped), the wait
for convergence and the final verdict against the sandboxes' truth and a clean run.

Every wait is bounded by a deadline and every process or server started here is stopped by
``Scenario.close`` (the ``scenario`` fixture calls it, also when the test fails).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import structlog

from ledger.precision import PrecisionTable
from ledger.storage.open import open_ledger
from sandbox.aurpay import SandboxConfig, start_sandbox
from sandbox.ebioro.model import EbioroSandboxConfig
from sandbox.ebioro.server import start_sandbox as start_ebioro
from tests.chaos.infra import RedisServer, free_port
from tests.chaos.judge import Expected, journal_problems, ledger_problems, tally_verify
from tests.chaos.report import ScenarioRecord
from tests.chaos.upstream import Upstream, UpstreamTally
from tests.helpers.processes import TallyProcess
from tests.helpers.waiting import wait_until
from worker.app.session import worker_session
from worker.sync.once import sync_once

POLL_SECONDS = 0.5
CLEAN_RUN_TIMEOUT = 120

# Settings every scenario shortens (the report lists them). The scheduler's incremental sync and
# reconcile run every 3 s instead of 60 s, so a test sees in seconds what a deployment sees in
# minutes. The daily full scan keeps its default: a shorter one would hide what these scenarios
# look for (work lost at a fault that only the next full scan would find again).
QUICK_INTERVALS = {"sync_incremental_interval_seconds": 3, "tally_reconcile_interval_seconds": 3}
# A deployment notices a dead worker by its heartbeat: 2 s instead of 60 s, so its unacknowledged
# messages go back to their queue at the scheduler's next minute job rather than a minute later.
QUICK_HEARTBEAT = {"tally_heartbeat_timeout_ms": 2000}
PAGE_SIZE = 20  # small pages: more messages, hence more work in flight when a fault lands
SETTLE_SECONDS = 3  # matched this long: no late duplicate or flapping version follows
# Aurpay kinds a fault may wait for: their truth section and their name in the report.
KILL_POINT_KINDS = {"order": ("orders", "orders"), "refund": ("refund_infos", "refund-infos")}


class LedgerProbe:
    """A read-only look at a ledger while tally writes it."""

    def __init__(self, database_url: str) -> None:
        self.store = open_ledger(database_url, PrecisionTable())

    def count(self, source: str, kind: str) -> int:
        return sum(1 for _ in self.store.iter_latest(source, kind))

    def close(self) -> None:
        self.store.close()


class CleanRuns:
    """Clean runs' ledgers by the truth they synced: scenarios of one world share one run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.urls: dict[str, str] = {}

    def url(self, upstream: Upstream, expected: Expected) -> str:
        """The ledger of a full sync of ``upstream`` (now calm) whose truth is ``expected``."""
        truth = repr((sorted(expected.objects.items()), sorted(expected.quarantined.items())))
        key = hashlib.sha256(truth.encode()).hexdigest()[:16]
        if key not in self.urls:
            url = f"sqlite:///{self.directory}/clean-{key}.db"
            with worker_session(upstream.settings(url)) as session:
                report = sync_once(
                    session.runtime,
                    session.actors,
                    session.worker,
                    sources=sorted(session.runtime.sources),
                    mode="full",
                    timeout=CLEAN_RUN_TIMEOUT,
                )
                assert report.ok, f"the clean run failed: {report.failure()}"
            self.urls[key] = url
        return self.urls[key]


class Scenario:
    """One scenario's sandboxes and processes, its record, and its verdict."""

    def __init__(self, record: ScenarioRecord, workdir: Path, clean_runs: CleanRuns) -> None:
        self.record = record
        self.workdir = workdir
        self.clean_runs = clean_runs
        self.running: list[TallyProcess] = []
        self.exits: list[tuple[str, int]] = []
        self.resources = ExitStack()
        self._logs = 0
        self.tally = UpstreamTally(record)
        structlog.configure(processors=[self.tally, *structlog.get_config()["processors"]])

    # --- set-up

    def upstream(self, configs: tuple[SandboxConfig, EbioroSandboxConfig]) -> Upstream:
        aurpay, ebioro = configs
        self.record.seed = aurpay.seed
        ours = self.resources.enter_context(start_sandbox(aurpay))
        theirs = self.resources.enter_context(start_ebioro(ebioro))
        return Upstream(ours, theirs)

    def shorten(self, **settings: Any) -> dict[str, Any]:
        """Record settings shortened from their defaults (the report names them)."""
        self.record.settings.update({k.upper(): str(v) for k, v in settings.items()})
        return settings

    def embedded_env(self, upstream: Upstream, database_url: str, **extra: Any) -> dict[str, str]:
        """Environment for ``tally run``: everything in one process, its broker in memory."""
        return upstream.env(
            database_url,
            aurpay_page_size=PAGE_SIZE,
            ebioro_page_size=PAGE_SIZE,
            tally_callback_port=free_port(),
            **self.shorten(**QUICK_INTERVALS),
            **extra,
        )

    def deployment_env(
        self, upstream: Upstream, database_url: str, redis_url: str, namespace: str
    ) -> dict[str, str]:
        """Environment for ``tally worker`` and ``tally scheduler`` on Redis."""
        return upstream.env(
            database_url,
            redis_url=redis_url,
            redis_namespace=namespace,
            aurpay_page_size=PAGE_SIZE,
            ebioro_page_size=PAGE_SIZE,
            **self.shorten(**QUICK_INTERVALS, **QUICK_HEARTBEAT),
        )

    def start(self, *commands: str, env: dict[str, str]) -> list[TallyProcess]:
        """``tally <command>`` for each command, as real processes started together; returned
        once each logged ``tally_started``."""
        started = []
        for command in commands:
            self._logs += 1
            log = self.workdir / f"{self._logs:02d}-{command}.log"
            started.append(TallyProcess([command], env, log))
            self.running.append(started[-1])  # stopped by ``close`` whatever happens next
        for process in started:
            process.wait_for_event("tally_started", timeout=60)
        self.record.lap("starting tally")
        return started

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait for ``condition`` while every started process still runs (bounded)."""

        def met() -> bool:
            self._check_alive()
            return condition()

        wait_until(met, timeout, lambda: what, interval=0.1)

    def probe(self, database_url: str) -> LedgerProbe:
        probe = LedgerProbe(database_url)
        self.resources.callback(probe.close)
        return probe

    def until_stored(self, probe: LedgerProbe, upstream: Upstream, kind: str, share: float) -> str:
        """Wait until ``share`` of the Aurpay objects of ``kind`` (``order`` or ``refund``) are
        in the ledger: a point mid-sync, as pages fan out and reveal refunded orders whose
        refund-infos follow; says where it stopped."""
        section, label = KILL_POINT_KINDS[kind]
        total = len(upstream.aurpay.world.truth()[section])
        self.wait(
            lambda: probe.count("aurpay", kind) >= share * total,
            60,
            f"{share:.0%} of the {total} Aurpay {label} in the ledger",
        )
        self.record.lap("syncing to the fault")
        return f"{probe.count('aurpay', kind)}/{total} Aurpay {label} stored"

    # --- faults

    def kill(self, target: TallyProcess | RedisServer, point: str) -> None:
        """``kill -9`` of a tally process or a redis-server (no shutdown code runs), recorded
        with the point it landed at."""
        target.kill()
        if isinstance(target, TallyProcess):
            self.running.remove(target)
            self.record.kill(f"tally {target.args[0]} at {point}")
        else:
            self.record.kill(f"redis-server (port {target.port}) at {point}")

    def fault(self, what: str, count: int = 1) -> None:
        self.record.fault(what, count)

    # --- convergence and verdict

    def converge(
        self,
        database_url: str,
        expected: Callable[[], Expected],
        deadline: float,
        settle: float = SETTLE_SECONDS,
    ) -> list[str]:
        """Poll the ledger until it matches ``expected()`` and keeps matching for ``settle``
        seconds, or until ``deadline`` seconds passed; the last problems found."""
        store = open_ledger(database_url, PrecisionTable())
        began = time.monotonic()
        matched_at: float | None = None
        try:
            while True:
                self._check_alive()
                problems = ledger_problems(store, expected())
                now = time.monotonic()
                if problems:
                    matched_at = None
                elif matched_at is None:
                    matched_at = now
                if matched_at is not None and now - matched_at >= settle:
                    break
                if now - began > deadline:
                    break
                time.sleep(POLL_SECONDS)
        finally:
            store.close()
        self.record.converged_after_s = None if matched_at is None else matched_at - began
        self.record.lap("converging")
        return problems

    def _check_alive(self) -> None:
        for process in self.running:
            if process.proc.poll() is not None:
                raise AssertionError(
                    f"tally {process.args[0]} exited ({process.proc.returncode}):\n{process.tail()}"
                )

    def stop_all(self) -> None:
        """SIGTERM every running tally process at once; a non-zero exit is a problem."""
        for process in self.running:
            process.terminate()
        for process in self.running:
            self.exits.append((process.args[0], process.stop()))
        self.running = []

    def verdict(self, database_url: str, upstream: Upstream, expected: Expected) -> list[str]:
        """Stop tally, then the whole ledger against ``expected``, a clean run's journal and
        ``tally verify``; recorded as the scenario's differences."""
        self.stop_all()
        problems = [f"exit: tally {name} exited {code}" for name, code in self.exits if code]
        store = open_ledger(database_url, PrecisionTable())
        try:
            problems += ledger_problems(store, expected)
            upstream.calm()
            self.tally.counting = False
            clean = open_ledger(self.clean_runs.url(upstream, expected), PrecisionTable())
            try:
                problems += journal_problems(store, clean)
            finally:
                clean.close()
        finally:
            store.close()
        problems += tally_verify(database_url)
        self.record.differences = problems
        self.record.lap("verdict")
        return problems

    def conclude(self, database_url: str, upstream: Upstream, expected: Expected) -> None:
        """The verdict; the test fails listing every difference found."""
        problems = self.verdict(database_url, upstream, expected)
        if problems:
            pytest.fail(f"{len(problems)} differences:\n" + "\n".join(problems), pytrace=False)

    def close(self) -> None:
        """Stop every process and server this scenario started (also after a failure)."""
        try:
            self.stop_all()
        finally:
            self.resources.close()
