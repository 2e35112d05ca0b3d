"""``tally sync``: one full (or incremental) scan of every source with all its fan-out, then exit.

It first makes sure the database, Redis and every gateway answer (one request each, with the
source's bounded retries), so a wrong URL or key ends it within seconds in one line. Ctrl-C
marks the runs interrupted (``tally status`` shows them so).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import timedelta

from worker.app.checks import check_redis, check_sources
from worker.app.commands import Subparsers, add_format, float_range, print_json
from worker.app.session import worker_session
from worker.config import Settings
from worker.errors import TallyError
from worker.gateways.registry import REGISTRY
from worker.logging import Progress, get_logger
from worker.runtime import utc_now
from worker.sync.once import sync_once

log = get_logger(__name__)
MAX_TIMEOUT = 7 * 86400.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="sync every source once, then exit",
        description="Sync every configured source (or those given) once, with all follow-ups, "
        "then reconcile and exit; exit 1 if a source failed or did not finish in time.",
    )
    parser.add_argument("--once", action="store_true", help="the default (kept for scripts)")
    parser.add_argument(
        "--source",
        action="append",
        metavar="SOURCE",
        help=f"only this configured source (repeatable): {', '.join(REGISTRY.names)} or "
        "<gateway>-<account> as listed in TALLY_SOURCES",
    )
    parser.add_argument(
        "--incremental", action="store_true", help="incremental instead of full scan"
    )
    parser.add_argument(
        "--timeout",
        type=float_range(0, MAX_TIMEOUT, open_low=True),
        default=3600,
        metavar="SECONDS",
        help="give up after this many seconds (default 3600)",
    )
    add_format(parser)
    parser.set_defaults(
        handler=handle, uses=("ledger", "broker", "sources", "sync", "alerts", "process")
    )


def preflight(settings: Settings, sources: list[str]) -> None:
    """Fail fast: Redis and every source answer, or one line naming the first that does not."""
    for check in itertools.chain([check_redis(settings)], check_sources(settings, sources)):
        if not check.ok:
            raise TallyError(
                f"{check.name}: {check.detail}" + (f"; {check.fix}" if check.fix else "")
            )


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.sources:
        raise settings.accounts.none_configured()
    sources = args.source or sorted(settings.sources)
    unknown = [s for s in sources if s not in settings.sources]
    if unknown:
        known = ", ".join(sorted(settings.sources))
        raise TallyError(f"source {unknown[0]!r} is not configured (configured: {known})")
    preflight(settings, sources)
    mode = "incremental" if args.incremental else "full"
    started = utc_now() - timedelta(seconds=1)
    progress = Progress.on_terminal() if args.format == "text" else None
    with worker_session(settings) as session:
        try:
            report = sync_once(
                session.runtime,
                session.actors,
                session.worker,
                sources=sources,
                mode=mode,
                timeout=args.timeout,
                on_progress=progress.show if progress else None,
            )
        except KeyboardInterrupt:
            state = session.runtime.state
            for run in state.unfinished_runs(sources, started):
                state.interrupt_run(run.run_id, utc_now())
            raise
        finally:
            if progress:
                progress.done()
    for s in report.summaries:
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
    if args.format == "json":
        print_json(
            {
                "ok": report.ok,
                "mode": mode,
                "runs": [
                    {
                        "source": s.source,
                        "run_id": s.run_id,
                        "pages": s.pages,
                        "new_snapshots": s.new_snapshots,
                        "journal_entries": s.journal_entries,
                        "rejected": s.rejected,
                        "error": s.error,
                    }
                    for s in report.summaries
                ],
                "incomplete": list(report.incomplete),
                "failure": None if report.ok else report.failure(),
            }
        )
    else:
        for s in report.summaries:
            print(
                f"sync {s.mode} {s.source}: pages={s.pages} new_snapshots={s.new_snapshots} "
                f"journal_entries={s.journal_entries} rejected={s.rejected}"
            )
    if not report.ok:
        print(f"tally: {report.failure()}", file=sys.stderr)
        return 1
    return 0
