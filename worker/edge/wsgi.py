"""WSGI building blocks shared by the edge's apps: JSON responses and errors, bounded bodies,
and several apps mounted under path prefixes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from worker.logging import get_logger

log = get_logger(__name__)

WSGIApp = WSGIApplication
Headers = Sequence[tuple[str, str]]


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def json_response(
    start_response: StartResponse,
    status: int,
    payload: Mapping[str, Any],
    headers: Headers = (),
) -> list[bytes]:
    """Send ``payload`` as the JSON body of a ``status`` response; return the WSGI body."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    start_response(
        status_line(status),
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ],
    )
    return [data]


def error_body(status: int, message: str) -> dict[str, Any]:
    """The one shape of every error the edge sends."""
    return {"ok": False, "status": status, "error": message}


class HTTPError(Exception):
    """Raised by an app under ``json_errors`` to answer ``status`` with a JSON error body."""

    def __init__(self, status: int, message: str, headers: Headers = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


def method_not_allowed(allowed: Iterable[str]) -> HTTPError:
    """405 with the ``Allow`` header RFC 9110 requires."""
    return HTTPError(405, "method not allowed", [("Allow", ", ".join(sorted(set(allowed))))])


def request_path(environ: WSGIEnvironment) -> str:
    """The full path of the request, wherever the app is mounted."""
    return str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))


def request_target(environ: WSGIEnvironment) -> str:
    """The request target exactly as sent (path and query, still percent-encoded)."""
    raw = environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = environ.get("QUERY_STRING")
    return request_path(environ) + (f"?{query}" if query else "")


def request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's headers, names lower-cased with dashes (``x-webhook-auth``)."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def read_body(environ: WSGIEnvironment, max_bytes: int) -> bytes:
    """The request body; ``HTTPError`` 413 beyond ``max_bytes``, 400 for a bad Content-Length.

    The server already refuses bodies over its own limit before the app runs; this is an app's
    own, smaller limit.
    """
    raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not raw.isdigit():
        raise HTTPError(400, "invalid Content-Length")
    length = int(raw)
    if length > max_bytes:
        raise HTTPError(413, f"body too large (limit {max_bytes} bytes)")
    if length == 0:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    return data


def json_errors(app: WSGIApp) -> WSGIApp:
    """``app`` with ``HTTPError`` turned into its JSON answer and any other exception into a
    JSON 500 (logged, never shown to the client)."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except HTTPError as exc:
            body = error_body(exc.status, exc.message)
            return json_response(start_response, exc.status, body, exc.headers)
        except Exception:
            log.exception("edge_app_failed", path=request_path(environ))
            body = error_body(500, "internal server error")
            return json_response(start_response, 500, body)

    return wrapped


def not_found(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    return json_response(start_response, 404, error_body(404, "not found"))


def mount(apps: Mapping[str, WSGIApp], fallback: WSGIApp = not_found) -> WSGIApp:
    """One app serving each of ``apps`` under its path prefix (``"/callbacks"``, ``"/"``); the
    longest matching prefix wins. The mounted app sees the prefix in ``SCRIPT_NAME`` and the
    rest in ``PATH_INFO``, as WSGI says; a request under no prefix goes to ``fallback``."""
    prefixes = sorted(((p.rstrip("/"), a) for p, a in apps.items()), key=lambda pa: -len(pa[0]))

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "")) or "/"
        for prefix, app in prefixes:
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME", "")) + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                return app(environ, start_response)
        return fallback(environ, start_response)

    return json_errors(dispatch)
