"""Small pieces the gateway client and payload tests share: failing HTTP handlers and a walk
over every value a parsed record holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


def raising(exc: Exception) -> Handler:
    """A transport handler that raises ``exc`` on every request."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def failing(times: int, first: Handler, then: Handler) -> Handler:
    """``first`` for the first ``times`` requests, ``then`` after."""
    calls = iter(range(10_000))
    return lambda r: first(r) if next(calls) < times else then(r)


def walk(value: Any) -> Iterator[Any]:
    """Every value inside dataclasses, mappings and sequences (the record and its raw JSON)."""
    yield value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for spec in dataclasses.fields(value):
            yield from walk(getattr(value, spec.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(key)
            yield from walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk(item)
