"""Logging set up once: structlog for our lines, stdlib records (dramatiq, httpx) rendered alike.

JSON lines off a TTY, readable lines on one. A redaction processor masks every configured
secret value and any field whose name says it holds a credential, wherever it appears.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEY = re.compile(
    r"(secret|password|passwd|api[_-]?key|token|signature|authorization|cookie|digest)", re.I
)
_MASK = "***"


class Redactor:
    """structlog processor: mask known secret values and credential-named fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, _MASK)
            return value
        if isinstance(value, dict):
            return {k: self._clean_item(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        if isinstance(value, BaseException):
            return self._clean(repr(value))
        return value

    def _clean_item(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and _SENSITIVE_KEY.search(key) and value not in (None, ""):
            return _MASK
        return self._clean(value)

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._clean_item(key, event_dict[key])
        return event_dict


def colour_wanted(stream: Any) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set (https://no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: Any = None,
    *,
    verbosity: int = 0,
    level_set: bool = True,
) -> None:
    """Configure structlog and the stdlib root logger once for the whole process.

    On a terminal a person is reading, not a log shipper: unless ``TALLY_LOG_LEVEL`` was set
    (``level_set``), only warnings show, ``-v`` (``verbosity`` 1) adds info and ``-vv`` debug;
    lines print above the progress line (``Progress``), never through it.
    """
    stream = stream or sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    as_json = fmt == "json" or (fmt == "auto" and not tty)
    if tty and not level_set:
        level = ("warning", "info", "debug")[min(verbosity, 2)]
    redactor = Redactor(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False, default=str)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=colour_wanted(stream))
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared[:-2],
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.processors.format_exc_info,
            redactor,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = _AboveProgress(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; ours already say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if level.lower() != "debug":  # dramatiq's start/stop chatter is not news
        logging.getLogger("dramatiq").setLevel(logging.WARNING)


def get_logger(name: str | None = None, **bound: Any) -> Any:
    """A lazy logger: safe at import time, it picks up ``configure_logging`` when first used."""
    return structlog.get_logger(name, **bound)


class Progress:
    """One line rewritten in place on a terminal (``sync``'s pages); log lines print above it.

    ``show`` is None off a terminal: the caller prints nothing then.
    """

    _current: Progress | None = None
    lock = threading.Lock()

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.text = ""

    @classmethod
    def on_terminal(cls, stream: Any = None) -> Progress | None:
        progress = cls(stream)
        return progress if getattr(progress.stream, "isatty", lambda: False)() else None

    def show(self, text: str) -> None:
        with self.lock:
            Progress._current = self
            self.text = text
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()

    def done(self) -> None:
        """Leave the last line on screen and end it."""
        with self.lock:
            if self.text:
                self.stream.write("\n")
                self.stream.flush()
            Progress._current = None

    @classmethod
    def above(cls, stream: Any, write: Any) -> None:
        """Run ``write`` with the progress line (if one is on ``stream``) moved below it."""
        with cls.lock:
            current = cls._current
            if current is not None and current.stream is stream and current.text:
                stream.write("\r\033[K")
                write()
                stream.write(f"\r\033[K{current.text}")
                stream.flush()
            else:
                write()


class _AboveProgress(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that prints above the progress line instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        Progress.above(self.stream, lambda: super(_AboveProgress, self).emit(record))
