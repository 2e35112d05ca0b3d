"""The hash chain verified end to end in the background, every few hours, so that a broken or
rewritten ledger becomes a metric (``tally_chain_verify_ok``) and an alert, not a surprise at
the next audit. The scheduler (one per deployment) runs it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from ledger.storage.store import LedgerStore
from ledger.storage.verify import VerifyReport, verify_store
from worker.logging import get_logger
from worker.metrics import ChainVerifyCollector
from worker.sync.status import utc_now

log = get_logger(__name__)

VERIFY_INTERVAL_SECONDS = 6 * 3600
FIRST_VERIFY_AFTER_SECONDS = 60.0  # not while the process is still starting up


class ChainVerifier:
    """Runs ``verify_store`` on its own thread: first after ``first_after`` seconds, then every
    ``interval`` seconds, until ``stop()``."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        interval: float = VERIFY_INTERVAL_SECONDS,
        first_after: float = FIRST_VERIFY_AFTER_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._interval = interval
        self._first_after = first_after
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.collector = ChainVerifyCollector()  # for the ops server's registry

    def run_once(self) -> VerifyReport | None:
        try:
            report = verify_store(self._store)
        except Exception as exc:  # the database being away is not a broken chain
            log.warning("chain_verify_failed", error=type(exc).__name__)
            return None
        self.collector.record(report.ok, report.entries, self._clock())
        if report.ok:
            log.info("chain_verified", entries=report.entries, head=report.head)
        else:
            log.error("chain_broken", broken_at=report.broken_at, problem=report.problem)
        return report

    def _loop(self) -> None:
        wait = self._first_after
        while not self._stop.wait(wait):
            self.run_once()
            wait = self._interval

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="chain-verify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a verify in progress ends at its next batch
            self._thread = None
