"""What every gateway client shares: the rate-limit hook, HTTP-status → error mapping,
``Retry-After``, the bounded in-call retry with backoff, page walks and credential masking.

Each provider keeps what is its own (auth, envelope, payloads); these pieces are the same
logic for every gateway, so they live once. Nothing here knows a provider's wire format.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import httpx
import structlog
from pydantic import SecretStr

from ledger import jsonx
from worker import metrics
from worker.errors import (
    AuthError,
    BadResponse,
    NotFound,
    ProviderError,
    RateLimited,
    Rejected,
    TransientError,
    Unavailable,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
P = TypeVar("P")

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0  # a longer server hint is left to the caller's retry tier


class Limiter(Protocol):
    """Rate limiting hook: ``slot()`` is held around every HTTP call."""

    def slot(self) -> AbstractContextManager[object]: ...


class NoLimit:
    def slot(self) -> AbstractContextManager[object]:
        return nullcontext()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def error_class(status: int) -> type[ProviderError] | None:
    """The error an HTTP status means on its own, or None for 2xx (the body decides)."""
    if status == 429:
        return RateLimited
    if status >= 500:
        return Unavailable
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if not 200 <= status < 300:
        return Rejected
    return None


def status_error(
    status: int, headers: httpx.Headers, now: datetime
) -> tuple[type[ProviderError] | None, float | None]:
    """(``error_class(status)``, the ``Retry-After`` hint when that error is transient)."""
    failed = error_class(status)
    if failed is None or not issubclass(failed, TransientError):
        return failed, None
    return failed, parse_retry_after(headers.get("Retry-After"), now)


def read_json_object(content: bytes) -> tuple[Mapping[str, Any] | None, str]:
    """(the body as a JSON object, "") or (None, why it is not one); numbers stay exact."""
    try:
        body = jsonx.loads(content)
    except jsonx.InvalidJSON as exc:
        return None, f"body is not JSON: {exc}"
    if not isinstance(body, Mapping):
        return None, "body is not a JSON object"
    return body, ""


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value, for validation messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    names = {str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


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
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
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
            log.info(f"{source}_call_retry", delay=round(delay, 3), **what)
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
        text = f"{source} {method} {target}: {type(exc).__name__}"
        raise Unavailable(text, source=source) from exc
    log.debug(f"{source}_call", method=method, path=target, status=response.status_code)
    return response


Check = Callable[[str, str, httpx.Response, datetime, Callable[[str], str]], Any]


class Caller:
    """One provider's HTTP calls: auth, timeout and limiter slot per attempt, bounded retries of
    transient failures, and ``check(method, target, response, now, redact)`` for the meaning.

    ``secrets`` are masked out of every provider message that becomes part of an error.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        source: str,
        auth: httpx.Auth,
        secrets: Iterable[SecretStr],
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
        self._secrets = tuple(secrets)
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
        return self._check(method, target, response, self._clock(), self.redact)

    def redact(self, text: str) -> str:
        # The provider's message is echoed into ours; never let it echo a credential back.
        return mask(text, self._secrets)


def walk_pages(
    fetch: Callable[[int], P], is_last: Callable[[P, int], bool], start: int = 1
) -> Iterator[P]:
    """Yield page ``start``, ``start + 1``, … until ``is_last(page, number)``.

    ``is_last`` gets the page number we asked for, not the one echoed back, so a server that
    echoes a wrong number cannot keep us looping.
    """
    number = start
    while True:
        page = fetch(number)
        yield page
        if is_last(page, number):
            return
        number += 1


def fetch_in_order(
    fetch: Callable[[int], P], numbers: Iterable[int], max_workers: int, name: str = "page"
) -> Iterator[P]:
    """Fetch ``numbers`` on up to ``max_workers`` threads; yield the pages in the given order.

    At most ``2 * max_workers`` pages are in flight or waiting, so a long range never piles up
    in memory. The first failure propagates when its page's turn comes; the pages not yet
    started are cancelled.
    """
    window: deque[Future[P]] = deque()
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
    try:
        for number in numbers:
            window.append(pool.submit(fetch, number))
            if len(window) >= 2 * max_workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
