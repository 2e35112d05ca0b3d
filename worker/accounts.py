"""Sources as named accounts of gateways: the ``TALLY_SOURCES`` grammar and each account's settings.

A source is ``<gateway>`` (the gateway's default account, variables ``AURPAY_API_KEY``, …) or
``<gateway>-<account>`` (variables with the account infixed: ``AURPAY_EU_API_KEY``, …). Names
are lower-case letters and digits, at most 32 characters (the ledger's source columns).
``TALLY_SOURCES=aurpay,aurpay-eu`` lists the sources; unset, they are the gateways whose default
credentials are set. Every problem is a one-line ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from worker.errors import ConfigError
from worker.gateways.contract import Gateway, GatewaySettings
from worker.gateways.registry import Registry

SOURCE_NAME = re.compile(r"(?P<gateway>[a-z][a-z0-9]*)(?:-(?P<account>[a-z0-9]+))?")
MAX_SOURCE_NAME = 32
LIST_VARIABLE = "TALLY_SOURCES"


@dataclass(frozen=True)
class SourceConfig:
    """One configured source: its name, its gateway, and that account's settings."""

    name: str
    gateway: Gateway[Any]
    account: str | None  # None: the gateway's default account
    settings: GatewaySettings


@dataclass(frozen=True)
class Accounts:
    """What the loader read: the sources, in order, and every secret of every account read
    (an account that does not sync may still hold one, e.g. a callback secret)."""

    registry: Registry
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    idle: tuple[tuple[str, str], ...] = ()  # (variable, why) of each default account left off

    def none_configured(self) -> ConfigError:
        """The error for a process that needs a source and has none."""
        hints = "; ".join(f"{variable}: {why}" for variable, why in self.idle)
        return ConfigError(
            f"invalid setting {LIST_VARIABLE}: no source is configured"
            + (f" ({hints})" if hints else "")
        )


def env_prefix(gateway: str, account: str | None) -> str:
    return f"{gateway}_{account}_" if account else f"{gateway}_"


def _example(registry: Registry) -> str:
    return f"{registry.names[0]}-eu" if registry.names else "<gateway>-eu"


def parse_source_name(name: str, registry: Registry) -> tuple[Gateway[Any], str | None]:
    """``aurpay-eu`` → (the aurpay gateway, "eu"); raises ConfigError naming TALLY_SOURCES."""
    match = SOURCE_NAME.fullmatch(name)
    if match is None or len(name) > MAX_SOURCE_NAME:
        raise ConfigError(
            f"invalid setting {LIST_VARIABLE}: {name!r} is not a source name (<gateway> or "
            f"<gateway>-<account>, lower-case letters and digits, at most {MAX_SOURCE_NAME} "
            f"characters, e.g. {_example(registry)})"
        )
    gateway = registry.get(match["gateway"])
    if gateway is None:
        known = ", ".join(registry.names)
        raise ConfigError(
            f"invalid setting {LIST_VARIABLE}: unknown gateway {match['gateway']!r} in "
            f"{name!r} (known: {known})"
        )
    return gateway, match["account"]


def listed_sources(text: str, registry: Registry) -> list[tuple[str, Gateway[Any], str | None]]:
    """The sources ``TALLY_SOURCES`` lists, in order: (name, gateway, account)."""
    names = [n.strip() for n in text.split(",")]
    if not any(names) or "" in names:
        raise ConfigError(
            f"invalid setting {LIST_VARIABLE}: a comma-separated list of source names, "
            f"e.g. {_example(registry)}"
        )
    duplicate = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if duplicate is not None:
        raise ConfigError(f"invalid setting {LIST_VARIABLE}: {duplicate!r} is listed twice")
    return [(name, *parse_source_name(name, registry)) for name in names]


def load_accounts(registry: Registry, listed: str | None, overrides: Mapping[str, Any]) -> Accounts:
    """Read each candidate account, validate it, keep those that sync.

    ``overrides`` are per-account values by variable name in lower case (``aurpay_page_size``,
    ``aurpay_eu_api_key``), as ``worker.config.load_settings`` takes them.
    """
    explicit = listed is not None
    candidates = (
        listed_sources(listed, registry)
        if listed is not None
        else [(g.name, g, None) for g in registry]
    )
    unclaimed = set(overrides)
    sources: dict[str, SourceConfig] = {}
    secrets: list[str] = []
    idle: list[tuple[str, str]] = []
    for name, gateway, account in candidates:
        prefix = env_prefix(gateway.name, account)
        mine = _overrides_for(gateway, prefix, overrides)
        unclaimed -= {prefix + key for key in mine}
        settings = _load(gateway, prefix, mine)
        secrets += settings.secret_values()
        problem = settings.inconsistency()
        if problem is None and explicit:
            problem = settings.missing_credentials()
            if problem is not None:
                problem = (problem[0], f"{problem[1]} (source {name} is in {LIST_VARIABLE})")
        if problem is not None:
            raise ConfigError(f"invalid setting {problem[0]}: {problem[1]}")
        missing = settings.missing_credentials()
        if missing is None:
            sources[name] = SourceConfig(name, gateway, account, settings)
        else:
            idle.append(missing)
    if unclaimed:
        first = sorted(unclaimed)[0].upper()
        raise ConfigError(f"invalid setting {first}: no configured source reads it")
    return Accounts(registry, sources, tuple(secrets), tuple(idle))


def _overrides_for(
    gateway: Gateway[Any], prefix: str, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    fields = gateway.settings.model_fields
    return {
        key[len(prefix) :]: value
        for key, value in overrides.items()
        if key.startswith(prefix) and key[len(prefix) :] in fields
    }


def _load(gateway: Gateway[Any], prefix: str, overrides: Mapping[str, Any]) -> GatewaySettings:
    try:
        account: GatewaySettings = gateway.load_settings(prefix, **overrides)
    except ValidationError as exc:
        raise config_error(exc, prefix) from None
    for name, value in account:
        # pydantic takes "inf" and "1e999" as floats: no timeout or rate is infinite.
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid(account.variable(name), "must be a finite number")
    return account


def config_error(
    exc: ValidationError, prefix: str = "", *, errors: Sequence[ErrorDetails] | None = None
) -> ConfigError:
    """The first problem of a settings model (or of ``errors``, a subset of its problems), as
    one line naming its variable and where its value came from."""
    first = (errors or exc.errors())[0]
    name = (prefix + str(first["loc"][0])).upper() if first["loc"] else "settings"
    return invalid(name, first["msg"].removeprefix("Value error, "))


def invalid(variable: str, reason: str) -> ConfigError:
    """``invalid setting VARIABLE: reason (set in the environment)``: one line."""
    where = origin(variable)
    suffix = f" (set in {where})" if where else ""
    return ConfigError(f"invalid setting {variable}: {reason}{suffix}")


def origin(variable: str, env_file: str = ".env") -> str:
    """Where ``variable``'s value comes from: "the environment", ".env" or "" (an override or
    a default). The environment wins over the file, as in the settings models."""
    if any(key.upper() == variable for key in os.environ):
        return "the environment"
    if os.path.isfile(env_file):
        from dotenv import dotenv_values  # pydantic-settings' own .env reader

        if any(key.upper() == variable for key in dotenv_values(env_file)):
            return env_file
    return ""
