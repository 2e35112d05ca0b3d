"""One source's HTTP calls: limiter slot, bounded in-call retries with backoff, credential masking.

What a response means is the gateway's ``check`` (built on ``base.responses``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import httpx
import structlog
from pydantic import SecretStr

from worker import metrics
from worker.errors import BadResponse, TransientError, Unavailable, unreachable

log = structlog.get_logger(__name__)

T = TypeVar("T")

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0  # a longer server hint is left to the caller's retry tier


class Limiter(Protocol):
    """Rate limiting hook: ``slot()`` is held around every HTTP call."""

    def slot(self) -> AbstractContextManager[object]: ...


class NoLimit:
    def slot(self) -> AbstractContextManager[object]:
        return nullcontext()


class GatewayAuth(httpx.Auth, ABC):
    """A gateway's request signing that can name its credentials, so they are masked out of
    every message that might echo them."""

    @abstractmethod
    def secrets(self) -> tuple[SecretStr, ...]: ...


def mask(text: str, secrets: Iterable[SecretStr]) -> str:
    """``text`` with every credential value replaced by ``***`` (providers echo what they got)."""
    for secret in secrets:
        value = secret.get_secret_value()
        if value:
            text = text.replace(value, "***")
    return text


def backoff_delay(attempt: int, retry_after: float | None, jitter: float) -> float | None:
    """Seconds before retry ``attempt + 1``: the server's hint when given (None when it asks
    for longer than the cap), else exponential backoff with "equal jitter" (``jitter`` ∈ [0, 1))."""
    if retry_after is not None:
        return retry_after if retry_after <= BACKOFF_CAP_SECONDS else None
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)
    return ceiling / 2 + jitter * ceiling / 2


def call_with_retries(
    attempt: Callable[[], T],
    *,
    source: str,
    method: str,
    target: str,
    retries: int,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
) -> T:
    """One logical call: ``attempt()`` again after each ``TransientError``, at most ``retries``
    more times, then raise. Logs ``<source>_call_retry`` and ``<source>_call_failed``."""
    number = 0
    while True:
        try:
            return attempt()
        except TransientError as exc:
            delay = backoff_delay(number, exc.retry_after, jitter())
            what = {
                "method": method,
                "path": target,
                "status": exc.status,
                "error": type(exc).__name__,
                "attempt": number + 1,
            }
            if number >= retries or delay is None:
                log.warning(f"{source}_call_failed", **what)
                raise
            log.debug(f"{source}_call_retry", delay=round(delay, 3), **what)
            metrics.retried(source, type(exc).__name__)
            sleep(delay)
            number += 1


def send(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    source: str,
    target: str,
    limiter: Limiter,
    **request: Any,
) -> httpx.Response:
    """One HTTP attempt inside a limiter slot; transport failures become ``worker.errors``."""
    try:
        with limiter.slot():
            response = http.request(method, path, **request)
    except httpx.TimeoutException as exc:
        raise Unavailable(f"{source} {method} {target}: timed out", source=source) from exc
    except httpx.DecodingError as exc:
        raise BadResponse(f"{source} {method} {target}: undecodable body", source=source) from exc
    except httpx.RequestError as exc:
        # the host and the cause ("cannot connect to http://h:1 (connection refused)"): what
        # `tally status`, `tally health` and the log show while a process keeps retrying
        text = f"{source} {method} {target}: {unreachable(exc) or type(exc).__name__}"
        raise Unavailable(text, source=source) from exc
    log.debug(f"{source}_call", method=method, path=target, status=response.status_code)
    return response


Check = Callable[[str, str, str, httpx.Response, datetime, Callable[[str], str]], Any]


class Caller:
    """One source's HTTP calls: auth, timeout and limiter slot per attempt, bounded retries of
    transient failures, and ``check(source, method, target, response, now, redact)`` for what
    a response means (its data, or the ``ProviderError`` to raise).

    The auth's ``secrets()`` are masked out of every provider message that becomes an error.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        source: str,
        auth: GatewayAuth,
        check: Check,
        timeout: httpx.Timeout,
        retries: int,
        limiter: Limiter,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        jitter: Callable[[], float],
    ) -> None:
        self.http = http
        self._source = source
        self._auth = auth
        self._secrets = auth.secrets()
        self._check = check
        self._timeout = timeout
        self._retries = retries
        self._limiter = limiter
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        endpoint: str | None = None,
    ) -> Any:
        """One logical call: bounded retries of transient failures, then raise.

        ``endpoint`` names the path for metrics when it holds an id (``/payments/{id}``).
        """
        target = f"{path}?{urlencode(query)}" if query else path
        return call_with_retries(
            lambda: self._attempt(method, path, query, target, endpoint or path),
            source=self._source,
            method=method,
            target=target,
            retries=self._retries,
            sleep=self._sleep,
            jitter=self._jitter,
        )

    def _attempt(
        self, method: str, path: str, query: Mapping[str, Any] | None, target: str, endpoint: str
    ) -> Any:
        started, status = time.perf_counter(), None
        try:
            response = send(
                self.http,
                method,
                path,
                source=self._source,
                target=target,
                limiter=self._limiter,
                params=query,
                auth=self._auth,
                timeout=self._timeout,
            )
            status = response.status_code
        finally:
            metrics.request_done(self._source, endpoint, status, time.perf_counter() - started)
        return self._check(self._source, method, target, response, self._clock(), self.redact)

    def redact(self, text: str) -> str:
        # The provider's message is echoed into ours; never let it echo a credential back.
        return mask(text, self._secrets)
