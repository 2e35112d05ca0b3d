"""The little HTTP the console needs on top of WSGI: a parsed request, HTML, redirects, errors.

A browser gets HTML pages (errors too); an API client (``Accept: application/json`` or a Bearer
token) gets the edge's JSON shapes. Every response carries headers that keep pages out of
caches, frames and other origins' scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote
from wsgiref.types import StartResponse, WSGIEnvironment

from worker.edge import HTTPError, json_response, read_body
from worker.edge.wsgi import Headers, request_headers, status_line

MAX_FORM_BYTES = 64 * 1024  # a note or a filter, never an upload

# No script runs on any page; inline SVG charts need no script and no inline style either.
SECURITY_HEADERS: Headers = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


@dataclass
class Request:
    """One request as the console reads it."""

    environ: WSGIEnvironment
    headers: dict[str, str] = field(init=False)
    query: dict[str, str] = field(init=False)
    _form: dict[str, str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.headers = request_headers(self.environ)
        self.query = _first_values(str(self.environ.get("QUERY_STRING", "")))

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @property
    def path(self) -> str:
        """The path inside the console (``/alerts/3``), wherever it is mounted."""
        return str(self.environ.get("PATH_INFO", "")) or "/"

    @property
    def root(self) -> str:
        """Where the console is mounted (``""`` or ``/console``): every link starts with it."""
        return str(self.environ.get("SCRIPT_NAME", "")).rstrip("/")

    @property
    def secure(self) -> bool:
        return self.environ.get("wsgi.url_scheme") == "https"

    @property
    def wants_json(self) -> bool:
        accept = self.headers.get("accept", "")
        bearer = self.headers.get("authorization", "").lower().startswith("bearer ")
        return bearer or ("application/json" in accept and "text/html" not in accept)

    def cookie(self, name: str) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None

    def form(self) -> dict[str, str]:
        """The body's fields: a url-encoded form (first value of each), or, from an API client,
        a JSON object of strings."""
        if self._form is None:
            kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
            body = read_body(self.environ, MAX_FORM_BYTES)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPError(400, "the body is not UTF-8") from None
            if kind == "application/json":
                self._form = _json_fields(text)
            elif not body or kind == "application/x-www-form-urlencoded":
                self._form = _first_values(text)
            else:
                raise HTTPError(415, "send a form (x-www-form-urlencoded) or a JSON object")
        return self._form

    def link(self, path: str, **params: object) -> str:
        """``path`` under the console's root, with the non-empty ``params`` as its query."""
        query = "&".join(
            f"{quote(str(k))}={quote(str(v), safe='')}"
            for k, v in params.items()
            if v not in (None, "")
        )
        return self.root + path + (f"?{query}" if query else "")


def _json_fields(text: str) -> dict[str, str]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        raise HTTPError(400, "the body is not JSON") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise HTTPError(400, 'send a JSON object of strings, e.g. {"note": "..."}')
    return {str(k): v for k, v in value.items()}


def _first_values(text: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def html(
    start_response: StartResponse, status: int, body: str, headers: Headers = ()
) -> list[bytes]:
    data = body.encode("utf-8")
    start_response(
        status_line(status),
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
            *SECURITY_HEADERS,
            *headers,
        ],
    )
    return [data]


def redirect(start_response: StartResponse, location: str, headers: Headers = ()) -> list[bytes]:
    """303: after a form's POST the browser GETs the page again (no resubmission on reload)."""
    start_response(
        status_line(303),
        [("Location", location), ("Content-Length", "0"), *SECURITY_HEADERS, *headers],
    )
    return [b""]


def send_json(
    start_response: StartResponse,
    payload: Mapping[str, Any],
    status: int = 200,
    headers: Headers = (),
) -> list[bytes]:
    # json_response sets Cache-Control itself: every security header but that one
    extra = [h for h in SECURITY_HEADERS if h[0] != "Cache-Control"]
    return json_response(start_response, status, payload, [*extra, *headers])


def static(start_response: StartResponse, data: bytes, content_type: str) -> Iterable[bytes]:
    start_response(
        status_line(200),
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "public, max-age=3600"),
        ],
    )
    return [data]
