"""Rule settings: ``TALLY_RULES`` turns rules on or off, sets their severity and tolerances.

``TALLY_RULES`` is a JSON object keyed by ``gateway.rule`` (``tally rules`` lists them)::

    {"ebioro.payment-amounts": {"severity": "page", "tolerance": {"USDC": "1"}},
     "aurpay.refund-missing": {"enabled": false},
     "aurpay.order": {"tolerance": {"*": "0.000001", "BTC": "0.00000002"}}}

Tolerances are in the gateway's own units (Ebioro: USDC cents), per currency or ``*`` for any,
given as strings or numbers (read exactly). Validated at startup: an unknown rule, a negative or
unreadable tolerance, an unknown severity is one line naming ``TALLY_RULES``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.reconcile.policy import RulePolicy, RuleSetting
from ledger.reconcile.rules import SEVERITIES, Rule
from worker.accounts import config_error
from worker.errors import ConfigError
from worker.gateways.registry import REGISTRY, Registry

KEYS = frozenset({"enabled", "severity", "tolerance"})


class RuleSettings(BaseSettings):
    """The reconcile rules' settings, read apart from the core settings."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    tally_rules: str = "{}"

    @field_validator("tally_rules")
    @classmethod
    def _shape(cls, value: str) -> str:
        parse(value)  # raises ValueError with the reason
        return value


def known_rules(gateways: Registry = REGISTRY) -> dict[str, Rule]:
    """Every rule of every registered gateway, by ``gateway.rule``."""
    found: dict[str, Rule] = {}
    for gateway in gateways:
        for rule in gateway.make_plan(gateway.name).rules.values():
            found[f"{gateway.name}.{rule.id}"] = rule
    return found


def parse(text: str) -> dict[str, RuleSetting]:
    """``TALLY_RULES`` as settings by rule name; ValueError says what is wrong."""
    try:
        raw = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        raise ValueError(
            'must be a JSON object such as {"aurpay.order": {"enabled": false}}'
        ) from None
    if not isinstance(raw, dict):
        raise ValueError('must be a JSON object such as {"aurpay.order": {"enabled": false}}')
    return {str(name): _setting(str(name), body) for name, body in raw.items()}


def _setting(name: str, body: Any) -> RuleSetting:
    if not isinstance(body, dict) or not set(body) <= KEYS:
        raise ValueError(f"{name}: give an object with {', '.join(sorted(KEYS))}")
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"{name}: enabled must be true or false")
    severity = body.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"{name}: severity must be one of {', '.join(SEVERITIES)}")
    tolerance = body.get("tolerance", {})
    if not isinstance(tolerance, dict):
        raise ValueError(f'{name}: tolerance must be an object such as {{"USDC": "0.5"}}')
    return RuleSetting(enabled, severity, _tolerances(name, tolerance))


def _tolerances(name: str, raw: Mapping[str, Any]) -> dict[str, Decimal]:
    found: dict[str, Decimal] = {}
    for currency, value in raw.items():
        try:
            amount = Decimal(str(value)) if not isinstance(value, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            raise ValueError(f"{name}: tolerance {currency} is not a number")
        if amount < 0:
            raise ValueError(f"{name}: tolerance {currency} is negative ({value})")
        found[str(currency).upper()] = amount
    return found


def check_names(settings: Mapping[str, RuleSetting], rules: Iterable[str]) -> None:
    known = set(rules)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]} (known: {', '.join(sorted(known))})")


def load_policy(gateways: Registry = REGISTRY, **overrides: Any) -> RulePolicy:
    """The rule policy from the environment (``overrides`` by lower-case name win), or a
    one-line ``ConfigError`` naming ``TALLY_RULES``."""
    try:
        settings = RuleSettings(**overrides)
        parsed = parse(settings.tally_rules)
        check_names(parsed, known_rules(gateways))
    except ValidationError as exc:
        raise config_error(exc) from None
    except ValueError as exc:
        raise ConfigError(f"invalid setting TALLY_RULES: {exc}") from None
    return RulePolicy(parsed)
