"""The console as one WSGI application: routes, access checks, HTML (or JSON) answers.

Reads (GET) need a signed-in session or a Bearer token, unless reading was left open on purpose
(``TALLY_CONSOLE_READ_ONLY_OPEN``); every write (POST) needs the token: 401 without it, 403 for a
session form without its CSRF token. Errors are HTML pages for a browser, the edge's JSON for an
API client; an unexpected failure is logged and shown as a bare 500 (never a traceback).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from jinja2 import Environment, PackageLoader, Undefined, select_autoescape

from ledger.alerts.store import AlertStore
from ledger.errors import LedgerError
from ledger.money import fmt
from ledger.storage.store import LedgerStore
from ledger.storage.verify import VerifyReport
from worker.config import Settings
from worker.console.auth import CSRF_FIELD, Sessions, Visitor
from worker.console.settings import ConsoleSettings
from worker.console.web import Request, html, redirect, send_json, static
from worker.edge import HTTPError
from worker.edge.wsgi import error_body, method_not_allowed
from worker.logging import get_logger
from worker.sync.status import format_age

log = get_logger(__name__)

CSS = files("worker.console").joinpath("static/console.css").read_bytes()


@dataclass(frozen=True)
class Page:
    """A template and its context; ``data`` is what an API client gets instead (JSON)."""

    template: str
    context: Mapping[str, Any]
    data: Mapping[str, Any] | None = None
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    location: str
    data: Mapping[str, Any] = field(default_factory=dict)  # the API client's answer
    headers: tuple[tuple[str, str], ...] = ()


Answer = Page | Redirect
Handler = Callable[["Console", Request, Visitor, re.Match[str]], Answer]


@dataclass
class Verified:
    """The latest chain verification this console ran (none is recorded elsewhere)."""

    report: VerifyReport | None = None
    at: datetime | None = None


class Console:
    """The console over one ledger: ``console(environ, start_response)`` is the WSGI app."""

    def __init__(
        self,
        settings: Settings,
        console: ConsoleSettings,
        store: LedgerStore,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from worker.console import routes  # the handlers import this module's types

        self.settings = settings
        self.access = console
        self.store = store
        self.alerts = AlertStore(store.engine)
        self.sessions = Sessions(console)
        self.now = now
        self.verified = Verified()
        self.verify_lock = threading.Lock()
        self._routes = routes.ROUTES
        self._public = routes.PUBLIC
        self._templates = Environment(
            loader=PackageLoader("worker.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            # lenient: a field the journal lacks (yet) renders empty rather than failing a page
            undefined=Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters.update(amount=_amount, when=_when, ago=self._ago)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            if request.path == "/static/console.css":
                return static(start_response, CSS, "text/css; charset=utf-8")
            return self._answer(request, start_response)
        except HTTPError as exc:
            return self._error(request, start_response, exc.status, exc.message, exc.headers)
        except LedgerError as exc:  # refused by the ledger's rules (e.g. ack a resolved alert)
            return self._error(request, start_response, 409, str(exc))
        except Exception:
            log.exception("console_failed", path=request.path, method=request.method)
            return self._error(request, start_response, 500, "internal error (see the log)")

    def _answer(self, request: Request, start_response: StartResponse) -> Iterable[bytes]:
        handler, match = self._route(request)
        visitor = self.sessions.visitor(request)
        if handler not in self._public:
            if request.method == "POST":
                self.sessions.check_write(visitor, request)
            elif not (visitor.signed_in or self.access.tally_console_read_only_open):
                if request.wants_json:
                    raise HTTPError(401, "sign in first", [("WWW-Authenticate", "Bearer")])
                return redirect(start_response, request.link("/login", next=request.path))
        answer = handler(self, request, visitor, match)
        if isinstance(answer, Redirect):
            if request.wants_json:
                return send_json(start_response, {"ok": True, **answer.data})
            return redirect(start_response, answer.location, answer.headers)
        if request.wants_json and answer.data is not None:
            return send_json(start_response, answer.data, answer.status)
        return html(start_response, answer.status, self.render(request, visitor, answer))

    def _route(self, request: Request) -> tuple[Handler, re.Match[str]]:
        allowed: list[str] = []
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method == request.method or (method == "GET" and request.method == "HEAD"):
                return handler, match
            allowed.append(method)
        if allowed:
            raise method_not_allowed(allowed)
        raise HTTPError(404, "no such page")

    def render(self, request: Request, visitor: Visitor, page: Page) -> str:
        template = self._templates.get_template(page.template)
        return template.render(
            **page.context,
            request=request,
            visitor=visitor,
            link=request.link,
            csrf_field=CSRF_FIELD,
            read_only=not visitor.signed_in,
            can_sign_in=self.sessions.can_sign_in,
        )

    def _error(
        self,
        request: Request,
        start_response: StartResponse,
        status: int,
        message: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Iterable[bytes]:
        if request.wants_json:
            return send_json(start_response, error_body(status, message), status, tuple(headers))
        visitor = Visitor()
        page = Page("error.html", {"status": status, "message": message})
        return html(start_response, status, self.render(request, visitor, page), tuple(headers))

    def _ago(self, moment: datetime | None) -> str:
        if moment is None:
            return "never"
        return f"{format_age((self.now() - moment).total_seconds())} ago"


def _amount(value: Any) -> str:
    return "-" if value is None else fmt(value)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
