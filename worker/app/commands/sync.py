"""``tally sync --once``: one full (or incremental) scan with all its fan-out, then exit."""

from __future__ import annotations

import argparse
import sys

from worker.app.commands import Subparsers
from worker.app.session import worker_session
from worker.config import Settings
from worker.errors import ConfigError
from worker.logging import get_logger
from worker.sync.once import sync_once, tty_progress

log = get_logger(__name__)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("sync", help="run one sync to completion and exit")
    parser.add_argument("--once", action="store_true", required=True, help="run once, then exit")
    parser.add_argument("--source", action="append", help="only this source (repeatable)")
    parser.add_argument(
        "--incremental", action="store_true", help="incremental instead of full scan"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="give up after this many seconds"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    with worker_session(settings) as session:
        sources = args.source or sorted(session.runtime.sources)
        unknown = [s for s in sources if s not in session.runtime.sources]
        if unknown:
            known = ", ".join(sorted(session.runtime.sources))
            raise ConfigError(f"source {unknown[0]!r} is not configured (known: {known})")
        mode = "incremental" if args.incremental else "full"
        progress = tty_progress()
        report = sync_once(
            session.runtime,
            session.actors,
            session.worker,
            sources=sources,
            mode=mode,
            timeout=args.timeout,
            on_progress=progress,
        )
        if progress:
            print(file=sys.stderr)
    for s in report.summaries:
        print(
            f"sync {s.mode} {s.source}: pages={s.pages} new_snapshots={s.new_snapshots} "
            f"journal_entries={s.journal_entries} rejected={s.rejected}"
        )
        log.info(
            "sync_summary",
            source=s.source,
            mode=s.mode,
            run_id=s.run_id,
            pages=s.pages,
            new_snapshots=s.new_snapshots,
            journal_entries=s.journal_entries,
            rejected=s.rejected,
        )
    if not report.ok:
        print(f"tally: {report.failure()}", file=sys.stderr)
        return 1
    return 0
