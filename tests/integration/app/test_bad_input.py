"""No traceback is a user interface: a bad value for any setting of any settings model, or for
any numeric argument of any sub-command, ends in one line naming it and a non-zero exit.

The models and the arguments are discovered, not listed: every ``BaseSettings`` subclass under
``worker/`` (a new one must be reachable from ``worker.config.MODELS``, the core settings, the
gateways' account settings or the rule settings), every field of each, and every ``int`` or
``float`` argument of every parser ``tally`` builds.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

import worker
from worker.alerts.settings import RuleSettings
from worker.app.cli import build_parser, main
from worker.config import GROUPS, MODELS, Settings
from worker.gateways.contract import GatewaySettings
from worker.gateways.registry import REGISTRY

# A command per settings group that validates it, then stops at once when the value is fine:
# no ledger (DATABASE_URL is a missing file), no source, no Redis for a separate process.
COMMAND_FOR_GROUP = {
    "logging": ["verify"],
    "ledger": ["verify"],
    "broker": ["status"],
    "process": ["status"],
    "sources": ["sync"],
    "sync": ["sync"],
    "alerts": ["reconcile"],
    "callbacks": ["callbacks"],
}
APART = ["doctor", "--format", "json"]  # checks the models read apart (worker.config.MODELS)


def settings_models() -> list[type[BaseSettings]]:
    """Every settings model defined under worker/."""
    for info in pkgutil.walk_packages(worker.__path__, "worker."):
        importlib.import_module(info.name)
    found: list[type[BaseSettings]] = []
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("worker.") and sub.model_fields:
                found.append(sub)
    return found


def _model_of(target: str) -> type[BaseSettings] | None:
    module, loader = target.split(":")
    hints = typing.get_type_hints(getattr(importlib.import_module(module), loader))
    returned = hints.get("return")
    return returned if isinstance(returned, type) else None


def cases() -> Iterator[tuple[str, str, list[str], bool]]:
    """(variable, bad value, command, must fail) for every field of every model."""
    extra = {_model_of(target): group for group, target in MODELS.items()}
    gateways = {gateway.settings: gateway.name for gateway in REGISTRY}
    for model in settings_models():
        for field, info in model.model_fields.items():
            if model is Settings:
                group = next((g for g, fields in GROUPS.items() if field in fields), "ledger")
                variables, command = [field.upper()], COMMAND_FOR_GROUP[group]
            elif issubclass(model, GatewaySettings) and model in gateways:
                variables, command = [f"{gateways[model]}_{field}".upper()], ["sync"]
            elif model is RuleSettings:
                variables, command = [field.upper()], ["reconcile"]
            elif model in extra:
                variables, command = [field.upper()], APART
            elif issubclass(model, GatewaySettings):
                continue  # an abstract base, or a test-only gateway
            else:
                raise AssertionError(
                    f"{model.__module__}.{model.__name__} is read by no command: add it to "
                    "worker.config.MODELS (group → 'module:loader')"
                )
            for value, must_fail in bad_values(info):
                for variable in variables:
                    yield variable, value, command, must_fail


def bad_values(info: FieldInfo) -> list[tuple[str, bool]]:
    """Values the field's type or bounds refuse (True), or odd ones it may accept (False)."""
    annotation = info.annotation
    args = set(typing.get_args(annotation)) - {type(None)}
    kind = next(iter(args)) if len(args) == 1 else annotation
    bounds = {type(m).__name__: m for m in info.metadata}
    if kind is bool:
        return [("maybe", True), ("2", True)]
    if kind in (int, float):
        values = [("abc", True), ("1e999" if kind is float else "1.5", True)]
        for name in ("Ge", "Gt"):
            if name in bounds:
                low = getattr(bounds[name], name.lower())
                values.append((str(low - 1), True))
        for name in ("Le", "Lt"):
            if name in bounds:
                values.append((str(getattr(bounds[name], name.lower()) + 1), True))
        return values
    if typing.get_origin(kind) is typing.Literal:
        return [("no-such-choice", True)]
    if kind in (str, SecretStr):
        return [("::not valid::", False), ('{"BTC": "abc"}', False), ("-1", False)]
    return [("::not valid::", False)]


BASE_ENV = {
    # Reachable nowhere, quickly: a source that turns out configured fails in one line.
    "AURPAY_BASE_URL": "http://127.0.0.1:9",
    "EBIORO_BASE_URL": "http://127.0.0.1:9",
    "AURPAY_IN_CALL_RETRIES": "0",
    "EBIORO_IN_CALL_RETRIES": "0",
    "TALLY_LOG_LEVEL": "error",
}
CASES = list(cases())


def _ids(case: tuple[str, str, list[str], bool]) -> str:
    return f"{case[0]}={case[1]}"


def test_every_settings_model_and_field_is_covered() -> None:
    variables = {case[0] for case in CASES}
    assert {"DATABASE_URL", "REDIS_URL", "AURPAY_PAGE_SIZE", "EBIORO_BASE_URL"} <= variables
    assert {f.upper() for f in Settings.model_fields} <= variables
    assert "TALLY_CONSOLE_PORT" in variables  # a model of its own (worker.config.MODELS)
    assert {command[0] for *_, command, _ in CASES} >= {"verify", "sync", "doctor"}


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_a_bad_setting_is_one_line_naming_it(
    case: tuple[str, str, list[str], bool],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    variable, value, command, must_fail = case
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/missing.db")
    for name, base in BASE_ENV.items():
        monkeypatch.setenv(name, base)
    monkeypatch.setenv(variable, value)

    code = main(command)  # a traceback here fails the test

    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    if command == APART:  # the doctor reports it as its settings check, in one line
        first = json.loads(captured.out)["checks"][0]
        lines = [f"tally: {first['detail']}"] if not first["ok"] else ["tally: (valid)"]
    assert code != 0, (variable, value, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith("tally")
    if must_fail:
        assert variable in lines[0], lines[0]
        assert "(set in the environment)" in lines[0]


def numeric_arguments() -> Iterator[tuple[list[str], argparse.Action, list[str]]]:
    """(sub-command path, a numeric argument, what else the path requires)."""

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[Any]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
        required = []
        for action in parser._actions:
            if action.required and action.option_strings:
                required += [action.option_strings[0], "x"]
            elif not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                required.append("1")
        for action in parser._actions:
            if getattr(action.type, "__name__", "") in ("int", "float", "number"):
                yield path, action, required

    yield from walk(build_parser(), [])


ARGUMENTS = list(numeric_arguments())


def test_numeric_arguments_are_found() -> None:
    found = {(" ".join(path), action.dest) for path, action, _ in ARGUMENTS}
    assert {("verify", "batch"), ("sync", "timeout"), ("worker", "threads")} <= found
    assert ("sandbox", "port") in found


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999999999999999", "1e999"])
@pytest.mark.parametrize(
    "path,action,required", ARGUMENTS, ids=[f"{' '.join(p)} {a.dest}" for p, a, _ in ARGUMENTS]
)
def test_a_bad_number_is_one_line_naming_the_argument(
    path: list[str],
    action: argparse.Action,
    required: list[str],
    value: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if action.option_strings:
        argv = [*path, action.option_strings[0], value, *required]
    else:  # a positional: the bad value takes its place
        rest = list(required)
        rest[rest.index("1")] = value
        argv = [*path, *rest]

    with pytest.raises(SystemExit) as stopped:
        main(argv)

    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"tally {' '.join(path)}: argument ")
