"""The gateways tally knows, listed once: one line per gateway, nothing registered by importing.

A composition root or a test adds a gateway with ``REGISTRY.with_gateway(...)`` and hands the
result to ``worker.config.load_settings(gateways=...)``; everything downstream (sources, books,
callbacks routes, limits) follows the settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from worker.gateways import aurpay, ebioro
from worker.gateways.contract import Gateway

BUILT_IN: tuple[Gateway[Any], ...] = (
    aurpay.GATEWAY,
    ebioro.GATEWAY,
)

# A gateway's name is its default source's name and its variables' prefix (AURPAY_…).
GATEWAY_NAME = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True)
class Registry:
    """An ordered set of gateways with distinct names."""

    gateways: tuple[Gateway[Any], ...]

    def __post_init__(self) -> None:
        names = [g.name for g in self.gateways]
        for name in names:
            if not GATEWAY_NAME.fullmatch(name):
                raise ValueError(f"gateway name {name!r} must be lower-case letters and digits")
        if len(set(names)) != len(names):
            raise ValueError(f"gateway names must be distinct: {names}")

    def __iter__(self) -> Iterator[Gateway[Any]]:
        return iter(self.gateways)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.gateways)

    def get(self, name: str) -> Gateway[Any] | None:
        return next((g for g in self.gateways if g.name == name), None)

    def with_gateway(self, gateway: Gateway[Any]) -> Registry:
        """This registry plus ``gateway`` (for a composition root or a test)."""
        return Registry((*self.gateways, gateway))


REGISTRY = Registry(BUILT_IN)
