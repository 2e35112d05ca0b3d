"""The worker's exceptions, grouped by what the caller should do about them.

    TallyError
    ├── ConfigError            a setting is wrong: stop startup with a one-line message
    └── ProviderError          a gateway call failed (keeps source, HTTP status, code, message)
        ├── TransientError     try again later (honour ``retry_after`` when given)
        │   ├── RateLimited    HTTP 429
        │   ├── Unavailable    5xx, timeouts, connection errors
        │   └── BadResponse    a body that is not the documented JSON (e.g. truncated)
        └── PermanentError     retrying the same request will not help
            ├── AuthError      401 / 403: credentials refused
            ├── NotFound       404
            └── Rejected       other 4xx, or a 2xx whose envelope says failure

Messages never include credentials: the client builds them from status, code and the
provider's own ``message`` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class TallyError(Exception):
    """Root of every error tally raises on purpose."""


class ConfigError(TallyError):
    """A bad or missing setting; ``str()`` is a one-line message naming the setting."""


class ProviderError(TallyError):
    """A provider call failed."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        status: int | None = None,
        code: int | str | None = None,
        provider_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.status = status
        self.code = code
        self.provider_message = provider_message
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return isinstance(self, TransientError)


class TransientError(ProviderError):
    """Retry later; ``retry_after`` (seconds) is the server's hint when it gave one."""


class RateLimited(TransientError):
    """HTTP 429."""


class Unavailable(TransientError):
    """5xx, timeout or connection failure."""


class BadResponse(TransientError):
    """The body was not the documented JSON shape (truncated, not JSON, no envelope)."""


class PermanentError(ProviderError):
    """The same request will fail the same way."""


class AuthError(PermanentError):
    """Credentials refused (401/403)."""


class NotFound(PermanentError):
    """The object does not exist (404)."""


class Rejected(PermanentError):
    """Other 4xx, or an envelope with ``code != 0`` or ``result`` not true."""


def unreachable(exc: BaseException, settings: Any = None) -> str | None:
    """One line for a failure to reach the database, Redis or a gateway, naming it and the
    cause (``cannot connect to http://127.0.0.1:1 (connection refused)``); None for anything
    else. ``settings`` supplies the URLs a driver's exception leaves out."""
    for link in _chain(exc):
        package, name = type(link).__module__.split(".")[0], type(link).__name__
        if package == "redis" and name in ("ConnectionError", "TimeoutError"):
            where = public_url(getattr(settings, "redis_url", None) or "redis")
            return f"cannot connect to Redis at {where} ({cause(link)})"
        if package == "sqlalchemy" and name == "OperationalError":
            where = public_url(getattr(settings, "database_url", None) or "the database")
            return f"cannot use the database at {where} ({cause(getattr(link, 'orig', link))})"
        if package == "httpx" and name in ("ConnectError", "ConnectTimeout", "ReadTimeout"):
            request = getattr(link, "_request", None)
            where = f"{request.url.scheme}://{request.url.netloc.decode()}" if request else "?"
            return f"cannot connect to {where} ({cause(link)})"
    return None


def public_url(url: str) -> str:
    """``url`` without its password (a URL in a message or on a screen)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + netloc))


def cause(exc: BaseException) -> str:
    """The root cause in a few words: the operating system's reason when there is one
    ("connection refused"), else the message's last line."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno is not None:
            return os.strerror(link.errno).lower()
        if isinstance(link, TimeoutError) or "timeout" in type(link).__name__.lower():
            return "timed out"
    lines = [
        line.strip()
        for line in str(exc).strip().splitlines()
        if line.strip() and not line.strip().startswith("(Background on this error")
    ]
    text = lines[-1] if lines else type(exc).__name__
    text = text.removeprefix("(sqlite3.OperationalError) ")
    return text[:160]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__
