"""The console's pages and actions: one handler per route, each returning a ``Page`` (template,
context, and the JSON an API client gets) or a ``Redirect`` after a write."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

import simplejson

from ledger.alerts.resolution import BadResolution, Resolution
from ledger.alerts.state import ACKNOWLEDGED, OPEN, RESOLUTIONS, STATUSES
from ledger.alerts.store import AlertNotFound, Filter
from ledger.money import fmt
from ledger.storage.verify import verify_store
from ledger.timeparse import as_utc
from worker.console import books
from worker.console.app import Answer, Console, Handler, Page, Redirect
from worker.console.auth import Visitor
from worker.console.chart import balance_chart
from worker.console.overview import incidents, source_rows
from worker.console.web import Request
from worker.edge import HTTPError
from worker.sync.state import RunState

RUNS_PER_SOURCE = 25
ALERTS_SHOWN = 500  # a page a person can scan; the filters narrow the rest
QUARANTINE_LIMIT = 200
LIVE = "live"  # open and acknowledged: what needs a person


def overview(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    now = c.now()
    rows = source_rows(
        c.store.engine, c.settings.sources, now, c.settings.sync_incremental_interval_seconds
    )
    head_seq, head_hash = c.store.head()
    groups = incidents(c.alerts.list_alerts(), now)
    data = {
        "sources": [
            {
                "source": r.name,
                "health": r.health,
                "detail": r.detail,
                "last_sync_at": _iso(r.last_sync_at),
                "last_full_at": _iso(r.last_full_at),
                "last_incremental_at": _iso(r.last_incremental_at),
                "backlog": r.backlog,
                "unfinished_runs": r.unfinished_runs,
                "throttled": r.throttled,
            }
            for r in rows
        ],
        "chain": {"head_seq": head_seq, "head_hash": head_hash},
        "incidents": [
            {
                "rule": g.rule,
                "open": g.open,
                "acknowledged": g.acknowledged,
                "oldest": _iso(g.oldest),
                "by_age": dict(g.by_age),
            }
            for g in groups
        ],
    }
    context = {
        "sources": rows,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "counts": c.store.counts(),
        "verified": c.verified,
        "incidents": groups,
    }
    return Page("overview.html", context, data)


# --- alerts


def alert_list(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    status = req.query.get("status", LIVE)
    statuses = {LIVE: (OPEN, ACKNOWLEDGED), "all": STATUSES}.get(status, (status,))
    if not set(statuses) <= set(STATUSES):
        raise HTTPError(400, f"status must be one of live, all, {', '.join(STATUSES)}")
    chosen = Filter(
        statuses=statuses,
        rules=_words(req.query.get("rule")),
        sources=_words(req.query.get("source")),
        subjects=_words(req.query.get("subject")),
        since=_day_start(req.query.get("since")),
    )
    found = c.alerts.list_alerts(where=chosen)
    found.reverse()  # newest first: what just happened is what a person looks for
    context = {
        "alerts": found[:ALERTS_SHOWN],
        "more": max(0, len(found) - ALERTS_SHOWN),
        "filters": req.query,
        "status": status,
        "statuses": STATUSES,
    }
    return Page("alerts.html", context, {"alerts": [a.to_json() for a in found]})


def alert_detail(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    alert = _alert(c, m)
    snapshots = [s for seq in alert.snapshot_seqs if (s := books.snapshot(c.store, seq))]
    suspense = (
        books.entry(c.store, alert.suspense_journal_seq) if alert.suspense_journal_seq else None
    )
    history = c.alerts.history(alert.id)
    entries = books.entries_for(c.store, alert.source, [alert.subject_id, *alert.related])
    context = {
        "alert": alert,
        "history": history,
        "snapshots": snapshots,
        "suspense": suspense,
        "entries": entries,
        "resolutions": RESOLUTIONS,
        "dumps": _pretty,
    }
    data = {
        "alert": alert.to_json(),
        "history": [
            {"revision": e.revision, "kind": e.kind, "at": _iso(e.at), "note": e.note}
            for e in history
        ],
    }
    return Page("alert.html", context, data)


def acknowledge(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    alert = _alert(c, m)
    done = c.alerts.acknowledge(alert.id, _note(req), c.now())
    return Redirect(req.link(f"/alerts/{done.id}"), {"alert": done.to_json()})


def resolve(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    alert = _alert(c, m)
    form = req.form()
    account = form.get("account", "").strip() or None
    try:
        how = Resolution(form.get("resolution", "explained").strip().lower(), account)
    except BadResolution as exc:
        raise HTTPError(400, str(exc)) from None
    done = c.alerts.resolve(alert.id, _note(req), c.now(), how)
    return Redirect(req.link(f"/alerts/{done.id}"), {"alert": done.to_json()})


# --- the ledger


def ledger(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    at = _date(req.query.get("at"))
    view = books.books(c.store, at)
    found = view.balances
    pairs = [(b.account, b.currency) for b in found]
    account, currency = req.query.get("account"), req.query.get("currency")
    if (account, currency) not in pairs:
        account, currency = pairs[0] if pairs else (None, None)
    chart = None
    if account and currency:
        label = f"balance of {account} in {currency} over time"
        chart = balance_chart(view.series(account, currency), label)
    context = {
        "balances": found,
        "at": at,
        "account": account,
        "currency": currency,
        "chart": chart,
    }
    data = {
        "at": at.isoformat() if at else None,
        "balances": [
            {"account": b.account, "currency": b.currency, "balance": fmt(b.balance)} for b in found
        ],
    }
    return Page("ledger.html", context, data)


def journal(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    query = req.query.get("q", "").strip()
    page = books.search(c.store, query, _int(req.query.get("page"), 1))
    context = {"page": page, "q": query, "sources": sorted(c.settings.sources)}
    return Page("journal.html", context, {"total": page.total, "page": page.page})


def story(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    source, external_id = m["source"], m["id"]
    configured = c.settings.sources.get(source)
    if configured is None:
        raise HTTPError(404, f"no source named {source}")
    moments = books.story(
        c.store, c.alerts, source, external_id, sorted(configured.gateway.derivers)
    )
    context = {"source": source, "external_id": external_id, "moments": moments, "dumps": _pretty}
    data = {"moments": [{"at": _iso(x.at), "what": x.what, "title": x.title} for x in moments]}
    return Page("story.html", context, data)


def story_lookup(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    source, external_id = req.query.get("source", ""), req.query.get("id", "").strip()
    if not source or not external_id:
        raise HTTPError(400, "give a source and an id")
    return Redirect(req.link(f"/story/{source}/{external_id}"))


# --- runs and quarantine


def runs(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    state = RunState(c.store.engine)
    names = sorted(c.settings.sources)
    by_source = {name: state.latest_runs(name, RUNS_PER_SOURCE) for name in names}
    context = {"by_source": by_source, "duration": _duration}
    data = {
        name: [
            {
                "run_id": r.run_id,
                "mode": r.mode,
                "started_at": _iso(r.started_at),
                "pages": r.pages,
                "objects": r.new_snapshots,
                "rejected": r.rejected,
                "finished": r.finished,
                "error": r.error,
            }
            for r in found
        ]
        for name, found in by_source.items()
    }
    return Page("runs.html", context, {"runs": data})


def quarantine(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    source = req.query.get("source") or None
    rows = []
    for row in c.store.iter_quarantined(source):
        rows.append(row)
        if len(rows) >= QUARANTINE_LIMIT:
            break
    context = {"rows": rows, "source": source or "", "limit": QUARANTINE_LIMIT}
    data = {"quarantined": [{k: _plain(v) for k, v in row.items()} for row in rows]}
    return Page("quarantine.html", context, data)


# --- the chain, and signing in


def verify(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    if not c.verify_lock.acquire(blocking=False):
        raise HTTPError(409, "a verification is already running")
    try:
        report = verify_store(c.store)
    finally:
        c.verify_lock.release()
    c.verified.report, c.verified.at = report, c.now()
    return Redirect(req.link("/"), {"verified": report.ok, "message": report.message()})


def login_form(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    return Page("login.html", {"next": _local(req.query.get("next")), "failed": False})


def login(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    form = req.form()
    target = _local(form.get("next"))
    cookie = c.sessions.sign_in(form.get("token", ""))
    if cookie is None:
        return Page("login.html", {"next": target, "failed": True}, status=401)
    header = ("Set-Cookie", c.sessions.cookie_header(req, cookie))
    return Redirect(req.link(target), headers=(header,))


def logout(c: Console, req: Request, v: Visitor, m: re.Match[str]) -> Answer:
    header = ("Set-Cookie", c.sessions.cookie_header(req, "", max_age=0))
    return Redirect(req.link("/login"), headers=(header,))


# --- helpers


def _alert(c: Console, m: re.Match[str]) -> Any:
    try:
        return c.alerts.get(int(m["id"]))
    except AlertNotFound as exc:
        raise HTTPError(404, str(exc)) from None


def _note(req: Request) -> str:
    note = req.form().get("note", "").strip()
    if not note:
        raise HTTPError(400, "a note is required: say who and why")
    return note[:2000]


def _words(text: str | None) -> tuple[str, ...]:
    return tuple(w for w in (text or "").replace(",", " ").split() if w)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise HTTPError(400, f"not a date (YYYY-MM-DD): {text[:40]}") from None


def _day_start(text: str | None) -> datetime | None:
    day = _date(text)
    return None if day is None else as_utc(datetime.combine(day, time()))


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default


def _local(target: str | None) -> str:
    """Only a path inside the console (never another site) is a place to go after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment else None


def _plain(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(simplejson.dumps(value, use_decimal=True, indent=2, ensure_ascii=False))


def _duration(run: Any) -> str:
    seconds = int((run.last_progress - run.started_at).total_seconds())
    return f"{seconds // 60}m {seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def _route(method: str, pattern: str, handler: Handler) -> tuple[str, re.Pattern[str], Handler]:
    return method, re.compile(pattern), handler


ID = r"(?P<id>[0-9]{1,18})"
ROUTES = (
    _route("GET", "/", overview),
    _route("GET", "/alerts", alert_list),
    _route("GET", f"/alerts/{ID}", alert_detail),
    _route("POST", f"/alerts/{ID}/ack", acknowledge),
    _route("POST", f"/alerts/{ID}/resolve", resolve),
    _route("GET", "/ledger", ledger),
    _route("GET", "/journal", journal),
    _route("GET", "/story", story_lookup),
    _route("GET", r"/story/(?P<source>[a-z0-9][a-z0-9_-]{0,31})/(?P<id>[^/\s]{1,128})", story),
    _route("GET", "/runs", runs),
    _route("GET", "/quarantine", quarantine),
    _route("POST", "/verify", verify),
    _route("GET", "/login", login_form),
    _route("POST", "/login", login),
    _route("POST", "/logout", logout),
)
PUBLIC = frozenset({login_form, login})  # reachable before signing in
