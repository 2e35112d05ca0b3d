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
