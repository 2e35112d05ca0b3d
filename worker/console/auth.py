"""Who is asking: a signed session cookie (after signing in with the token), a Bearer token, or
nobody; and the CSRF token a signed-in browser's forms carry.

Sessions are stateless: the cookie holds an expiry and a random id, signed with a key derived
from ``TALLY_CONSOLE_TOKEN``, so changing the token signs everyone out. A form's CSRF token is
an HMAC of the session id, so a page of another origin can neither read nor forge it (the cookie
is also ``SameSite=Strict`` and ``HttpOnly``). Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from worker.console.settings import ConsoleSettings
from worker.console.web import Request
from worker.edge import HTTPError

COOKIE = "tally_console"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Visitor:
    """What the request may do: ``signed_in`` by session or bearer; ``csrf`` for its forms."""

    signed_in: bool = False
    bearer: bool = False
    session_id: str | None = None
    csrf: str | None = None


class Sessions:
    """Issues and checks session cookies and CSRF tokens for one console token."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self._settings = settings
        token = settings.token
        self._key = (
            hmac.new(token.encode(), b"tally-console-session-v1", hashlib.sha256).digest()
            if token
            else None
        )

    @property
    def can_sign_in(self) -> bool:
        return self._key is not None

    def visitor(self, request: Request) -> Visitor:
        """Identify the request; a wrong Bearer token is refused outright (401)."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not self._token_matches(given.strip()):
                raise HTTPError(401, "invalid bearer token", [("WWW-Authenticate", "Bearer")])
            return Visitor(signed_in=True, bearer=True)
        session_id = self._session_id(request.cookie(COOKIE))
        if session_id is None:
            return Visitor()
        return Visitor(signed_in=True, session_id=session_id, csrf=self._csrf(session_id))

    def sign_in(self, given: str) -> str | None:
        """A new session cookie value when ``given`` is the token, else None."""
        if not self._token_matches(given):
            return None
        expires = int(time.time()) + self._settings.tally_console_session_hours * 3600
        body = f"{expires}.{secrets.token_urlsafe(18)}"
        return f"{body}.{self._sign(body)}"

    def cookie_header(self, request: Request, value: str, *, max_age: int | None = None) -> str:
        age = self._settings.tally_console_session_hours * 3600 if max_age is None else max_age
        parts = [
            f"{COOKIE}={value}",
            f"Path={request.root or '/'}",
            f"Max-Age={age}",
            "HttpOnly",
            "SameSite=Strict",
        ]
        if request.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def check_write(self, visitor: Visitor, request: Request) -> None:
        """A write needs the token (401 without it) and, from a session, the form's CSRF token
        (403 without it); a Bearer client sends no cookie, so it needs no CSRF token."""
        if not visitor.signed_in:
            why = "writes need TALLY_CONSOLE_TOKEN: sign in, or send Authorization: Bearer"
            raise HTTPError(401, why, [("WWW-Authenticate", "Bearer")])
        if visitor.bearer:
            return
        given = request.form().get(CSRF_FIELD, "")
        if visitor.csrf is None or not hmac.compare_digest(given.encode(), visitor.csrf.encode()):
            raise HTTPError(403, "the form's CSRF token is missing or wrong: reload the page")

    def _token_matches(self, given: str) -> bool:
        token = self._settings.token
        if token is None:
            return False
        return hmac.compare_digest(
            hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
        )

    def _sign(self, body: str) -> str:
        assert self._key is not None
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def _session_id(self, value: str | None) -> str | None:
        if not value or self._key is None or value.count(".") != 2:
            return None
        expires, session_id, signature = value.split(".")
        if not hmac.compare_digest(
            signature.encode(), self._sign(f"{expires}.{session_id}").encode()
        ):
            return None
        if not expires.isdigit() or int(expires) < time.time():
            return None
        return session_id

    def _csrf(self, session_id: str) -> str:
        return self._sign(f"csrf.{session_id}")
