"""``tally status``: one screen for a person — readiness, each source's last sync, lag, pages and
rejected counts of its latest run, recovery's backlog (follow-ups pending, runs interrupted), the
ledger's size and chain head, open alerts by rule."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from ledger.storage.engine import make_engine
from ledger.storage.store import LedgerStore
from worker.app.commands import Subparsers, add_format, print_json
from worker.config import Settings
from worker.ops.health import Readiness, deployment_readiness
from worker.sync.state import RunSummary
from worker.sync.status import (
    INTERRUPTED_WINDOW,
    SourceStatus,
    alerts_by_rule,
    format_age,
    source_status,
    utc_now,
)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="one screen: sources, lag, ledger size and head, open alerts",
        description="One screen for a person: readiness, each source's last sync and lag, its "
        "latest run (finished, in progress, interrupted or failed), recovery's backlog, the "
        "ledger's size and chain head, open alerts by rule. Exit 1 when not ready.",
    )
    add_format(parser)
    parser.set_defaults(
        handler=status, uses=("ledger", "broker", "sources", "process"), needs_ledger=True
    )


def status(args: argparse.Namespace, settings: Settings) -> int:
    now = utc_now()
    engine = make_engine(settings.database_url)
    store = LedgerStore(engine, settings.precision_table())
    try:
        ready = deployment_readiness(settings, engine)
        if args.format == "json":
            print_json(_document(settings, engine, store, ready, now))
            return 0 if ready.ok else 1
        lines = [f"tally status at {now:%Y-%m-%d %H:%M:%S} UTC", _row("health", ready.reason)]
        lines.append(_row("database", make_url(settings.database_url).render_as_string()))
        lines.append(_row("broker", _broker(settings)))
        if ready.checks[0].ok:  # the rest lives in the database
            lines += _sources(source_status(engine), now)
            counts, (seq, head) = (
                {**store.counts(), "unpriced": store.unpriced_count()},
                store.head(),
            )
            lines.append(_row("ledger", _ledger(counts)))
            lines.append(_row("chain", f"head #{seq} {head[:16]}…" if seq else "empty"))
            lines.append(_row("alerts", _alerts(alerts_by_rule(engine))))
    finally:
        store.close()
    print("\n".join(lines))
    return 0 if ready.ok else 1


def _document(
    settings: Settings, engine: Any, store: LedgerStore, ready: Readiness, now: datetime
) -> dict[str, Any]:
    """``--format json`` (docs/cli.md): the same facts as the screen, times in ISO-8601 UTC."""
    document: dict[str, Any] = {
        "at": now.isoformat(),
        "health": ready.to_json(),
        "database": make_url(settings.database_url).render_as_string(),
        "broker": _broker(settings),
        "sources": [],
        "ledger": None,
        "chain_head": None,
        "alerts": [],
    }
    if not ready.checks[0].ok:
        return document
    for s in source_status(engine):
        run = s.latest_run
        document["sources"].append(
            {
                "source": s.source,
                "last_sync_at": _iso(s.last_sync_at),
                "last_error": s.last_error,
                "interrupted_runs": s.interrupted_runs,
                "latest_run": None
                if run is None
                else {
                    "run_id": run.run_id,
                    "mode": run.mode,
                    "started_at": _iso(run.started_at),
                    "state": _run_state(run),
                    "pages": run.pages,
                    "pages_expected": run.pages_expected or None,
                    "rejected": run.rejected,
                    "error": run.error,
                },
            }
        )
    seq, head = store.head()
    document["ledger"] = {**store.counts(), "unpriced": store.unpriced_count()}
    document["chain_head"] = f"{seq}:{head}" if seq else None
    document["alerts"] = [
        {"rule": rule, "status": status, "count": n}
        for (rule, status), n in sorted(alerts_by_rule(engine).items())
    ]
    return document


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _run_state(run: RunSummary) -> str:
    if run.error:
        return "failed"
    if run.finished:
        return "finished"
    return "interrupted" if run.interrupted else "in progress"


def _row(label: str, text: str) -> str:
    return f"{label:<9} {text}".rstrip()


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{format_age((now - moment).total_seconds())} ago"


def _broker(settings: Settings) -> str:
    if not settings.redis_url:
        return "embedded (single process)"
    parts = urlsplit(settings.redis_url)
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never show a password
    return f"{urlunsplit(parts._replace(netloc=netloc))} namespace {settings.redis_namespace}"


def _sources(statuses: list[SourceStatus], now: datetime) -> list[str]:
    if not statuses:
        return [_row("sources", "none synced yet")]
    lines = [_row("sources", "")]
    for s in statuses:
        newest = [f.high_water for f in s.feeds if f.high_water is not None]
        lag = format_age((now - max(newest)).total_seconds()) if newest else "-"
        scans = [f.last_full_scan_at for f in s.feeds]
        full = None if not scans or None in scans else min(d for d in scans if d)
        lines.append(
            f"  {s.source:<8} last sync {_ago(s.last_sync_at, now)} · lag {lag} (newest object)"
            f" · last full scan {_ago(full, now)}"
        )
        if s.latest_run is not None:
            run = s.latest_run
            state = _run_state(run)
            if run.error:
                state = f"failed: {run.error[:120]}"
            lines.append(
                f"  {'':<8} latest run {run.mode} started {_ago(run.started_at, now)}, {state}:"
                f" {run.pages}/{run.pages_expected or '?'} pages, {run.rejected} rejected"
            )
        if s.recovery is not None or s.interrupted_runs:
            lines.append(f"  {'':<8} {_backlog(s, now)}")
        if s.last_error:
            lines.append(f"  {'':<8} last error: {s.last_error[:160]}")
    return lines


def _backlog(s: SourceStatus, now: datetime) -> str:
    """What recovery found: follow-ups the ledger implies but lacks, runs interrupted."""
    note = s.recovery
    if note is None:
        found = "recovery never ran (no scheduler)"
    elif not note.checked_since_start:
        found = f"recovery not checked since the scheduler started {_ago(note.started_at, now)}"
        found += " (backlog unknown)"
    else:
        found = f"recovery checked {_ago(note.checked_at, now)}:"
        found += f" {note.pending_follow_ups} follow-ups pending"
    hours = int(INTERRUPTED_WINDOW.total_seconds() // 3600)
    return f"{found} · interrupted runs in {hours}h: {s.interrupted_runs}"


def _ledger(counts: Mapping[str, int]) -> str:
    return " · ".join(
        f"{counts[key]:,} {label}"
        for key, label in (
            ("snapshots", "snapshots"),
            ("journal_entries", "journal entries"),
            ("postings", "postings"),
            ("quarantined", "quarantined"),
            ("unpriced", "without a fiat value (tally unpriced)"),
        )
    )


def _alerts(live: Mapping[tuple[str, str], int]) -> str:
    parts = []
    for status in ("open", "acknowledged"):
        rules = {rule: n for (rule, st), n in sorted(live.items()) if st == status}
        if rules:
            by_rule = ", ".join(f"{rule} {n}" for rule, n in rules.items())
            parts.append(f"{sum(rules.values())} {status} ({by_rule})")
    return " · ".join(parts) or "none open"
