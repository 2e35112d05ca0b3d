"""The deployment files parse, have what each platform needs, set only real settings, and run
only commands the CLI knows: Docker and Kubernetes do not run here, so this is their check."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from worker.accounts import env_prefix
from worker.alerts.settings import RuleSettings
from worker.app.cli import build_parser
from worker.app.export_settings import ExportSettings
from worker.config import Settings
from worker.console.settings import ConsoleSettings
from worker.gateways.registry import REGISTRY
from worker.retention.settings import RetentionSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
TALLY = ROOT / ".venv" / "bin" / "tally"
# The core settings, then each gateway's for its default account (AURPAY_API_KEY, …).
ACCOUNT_FIELDS = {
    env_prefix(g.name, None).upper() + field.upper(): (g, field)
    for g in REGISTRY
    for field in g.settings.model_fields
}
SETTINGS = [name.upper() for name in Settings.model_fields] + list(ACCOUNT_FIELDS)
# and the models read apart from the core (console, retention, exports, rules)
SETTINGS += [
    name.upper()
    for model in (RuleSettings, ConsoleSettings, RetentionSettings, ExportSettings)
    for name in model.model_fields
]
GRACE = Settings.model_fields["tally_shutdown_grace_seconds"].default
SERVICES = {("worker",), ("scheduler",), ("callbacks",)}
RELEASE = ("db", "upgrade")


def settings_doc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_doc", DEPLOY / "settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def assert_cli_command(argv: list[str]) -> tuple[str, ...]:
    """``argv`` (without the program name) parses and names a runnable command."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`tally {' '.join(argv)}` is not a command the CLI knows")
    assert getattr(args, "handler", None), f"`tally {' '.join(argv)}` runs nothing"
    return (args.command, args.db_action) if args.command == "db" else (args.command,)


def assert_settings(names: Iterator[str] | list[str], where: str) -> None:
    unknown = sorted(set(names) - set(SETTINGS))
    assert unknown == [], f"{where} sets variables tally does not read: {unknown}"


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load_yaml(path)]


def test_every_yaml_file_loads() -> None:
    files = sorted(DEPLOY.rglob("*.y*ml"))
    assert {p.name for p in files} >= {"docker-compose.yml", "worker.yaml", "configmap.yaml"}
    for path in files:
        assert load_yaml(path), f"{path} is empty"


# --- the settings reference


def test_env_example_lists_every_setting_with_a_comment_and_its_default(tmp_path: Path) -> None:
    doc = settings_doc()
    for path, render in doc.GENERATED.items():
        assert path.read_text(encoding="utf-8") == render(), (
            f"{path.name} is out of date: run .venv/bin/python deploy/settings_doc.py write"
        )
    lines = (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines()
    assigned = [
        (i, line.split("=", 1)[0]) for i, line in enumerate(lines) if re.match(r"[A-Z]", line)
    ]
    names = [name for _, name in assigned]
    assert sorted(names) == sorted(SETTINGS)  # every one, once
    core = [n.upper() for n in Settings.model_fields]
    assert [n for n in names if n in core] == core  # in Settings' order
    for i, name in assigned:
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 10, f"{name} has no comment"
    # Used as it is, the file changes nothing: every value is the default (or unset).
    from_file = Settings(_env_file=DEPLOY / "env.example")  # type: ignore[call-arg]
    assert from_file.model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]
    for gateway in REGISTRY:
        prefix = env_prefix(gateway.name, None)
        account = gateway.settings(_env_file=DEPLOY / "env.example", _env_prefix=prefix)
        assert account.model_dump() == gateway.settings(_env_file=None).model_dump()
    table = doc.render_table()
    assert all(f"| `{name}` |" in table for name in SETTINGS)


def test_kubernetes_config_map_and_secret_hold_every_setting_once() -> None:
    by_kind = {o["kind"]: o for o in k8s_objects() if o["kind"] in ("ConfigMap", "Secret")}
    config, secret = set(by_kind["ConfigMap"]["data"]), set(by_kind["Secret"]["stringData"])
    assert config | secret == set(SETTINGS)
    assert config & secret == set()
    secret_fields = {
        n.upper() for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
    } | {
        name
        for name, (g, field) in ACCOUNT_FIELDS.items()
        if "SecretStr" in str(g.settings.model_fields[field].annotation)
    }
    assert secret_fields <= secret  # no credential in a ConfigMap
    assert {"DATABASE_URL", "REDIS_URL"} <= secret  # URLs carry passwords


# --- Procfile


def _expand(command: str, env: Mapping[str, str]) -> str:
    """``${NAME:-default}`` and ``$NAME`` as sh expands them."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1) or match.group(3), match.group(2)
        return env.get(name) or (default or "")

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", value, command)


def procfile() -> dict[str, str]:
    text = (ROOT / "Procfile").read_text(encoding="utf-8")
    return dict(line.split(":", 1) for line in text.splitlines() if line.strip())


def test_procfile_commands_exist_in_the_cli() -> None:
    processes = {name.strip(): command.strip() for name, command in procfile().items()}
    assert set(processes) == {"release", "worker", "scheduler", "callbacks"}
    found = set()
    for command in processes.values():
        argv = shlex.split(_expand(command, {"PORT": "5000"}))
        assert argv[0] == "tally"
        found.add(assert_cli_command(argv[1:]))
    assert found == SERVICES | {RELEASE}
    assert_settings(
        (n for c in processes.values() for n in re.findall(r"\$\{?(\w+)", c) if n != "PORT"),
        "the Procfile",
    )


# --- docker compose


def test_compose_runs_every_process_type_with_real_settings() -> None:
    (compose,) = load_yaml(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "release", "worker", "scheduler", "callbacks"}
    for name in ("postgres", "redis"):
        assert services[name]["image"] and services[name]["healthcheck"]["test"]
    commands = {}
    for name in ("release", "worker", "scheduler", "callbacks"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        commands[name] = assert_cli_command(service["command"])
        assert_settings(service["environment"], f"compose service {name}")
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["REDIS_URL"].startswith("redis://")
    assert commands == {"release": RELEASE, **{c[0]: c for c in SERVICES}}
    assert services["release"]["restart"] == "no"
    assert services["release"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "scheduler", "callbacks"):
        service = services[name]
        after = service["depends_on"]["release"]["condition"]
        assert after == "service_completed_successfully"
        assert service["stop_signal"] == "SIGTERM"
        assert int(service["stop_grace_period"].rstrip("s")) > GRACE
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["scheduler"]["deploy"]["replicas"] == 1
    assert services["callbacks"]["ports"] == ["8078:8078"]


# --- Kubernetes


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(obj)["containers"]
    return container


def test_kubernetes_objects_have_what_each_needs() -> None:
    objects = k8s_objects()
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"], obj
        if obj["kind"] != "Kustomization":
            assert obj["metadata"]["name"].startswith("tally-"), obj
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(deployments) == {"tally-worker", "tally-scheduler", "tally-callbacks"}
    (job,) = [o for o in objects if o["kind"] == "Job"]
    workloads = [*deployments.values(), job]
    commands = set()
    for obj in workloads:
        pod, container = _pod(obj), _container(obj)
        labels = obj["spec"]["template"]["metadata"]["labels"]
        if obj["kind"] == "Deployment":
            assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert pod["terminationGracePeriodSeconds"] > GRACE
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["metrics"] == 9100
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        commands.add(assert_cli_command(container["args"]))
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
        assert refs == {"configMapRef": "tally-config", "secretRef": "tally-secrets"}
        assert_settings((e["name"] for e in container.get("env", [])), obj["metadata"]["name"])
    assert commands == SERVICES | {RELEASE}
    assert deployments["tally-worker"]["spec"]["replicas"] >= 2
    assert deployments["tally-scheduler"]["spec"]["replicas"] == 1
    assert _pod(job)["restartPolicy"] in ("Never", "OnFailure") and job["spec"]["backoffLimit"]

    (service,) = [o for o in objects if o["kind"] == "Service"]
    callbacks = deployments["tally-callbacks"]
    assert service["spec"]["selector"] == callbacks["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in _container(callbacks)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    assert config["TALLY_CALLBACK_PORT"] == str(
        next(p["containerPort"] for p in _container(callbacks)["ports"] if p["name"] == "callbacks")
    )
    assert config["TALLY_METRICS_PORT"] == "9100" and config["TALLY_METRICS_HOST"] == "0.0.0.0"
    (kustomization,) = [o for o in objects if o["kind"] == "Kustomization"]
    assert all((DEPLOY / "k8s" / r).exists() for r in kustomization["resources"])


# --- systemd


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section → key → values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            current.setdefault(key, []).append(value)
    return sections


def test_systemd_units_run_the_cli_commands_with_restart_policies() -> None:
    units = {p.name: unit(p) for p in (DEPLOY / "systemd").glob("*.service")}
    assert set(units) == {
        "tally-worker@.service",
        "tally-scheduler.service",
        "tally-callbacks.service",
    }
    commands = set()
    for name, sections in units.items():
        service = sections["Service"]
        (exec_start,) = service["ExecStart"]
        argv = shlex.split(exec_start)
        env = []
        if argv[0] == "/usr/bin/env":
            while "=" in argv[1]:
                env.append(argv.pop(1).split("=", 1)[0])
            argv.pop(0)
        assert argv[0].endswith("/tally"), name
        commands.add(assert_cli_command(argv[1:]))
        env += [e.split("=", 1)[0] for e in service.get("Environment", [])]
        assert_settings(env, name)
        assert "TALLY_METRICS_PORT" in env
        assert service["Restart"][0] in ("always", "on-failure")
        assert service["KillSignal"] == ["SIGTERM"]
        assert int(service["TimeoutStopSec"][0]) > GRACE
        assert service["EnvironmentFile"] and service["User"] == ["tally"]
        assert sections["Install"]["WantedBy"]
    assert commands == SERVICES
    assert "TALLY_METRICS_PORT=%i" in units["tally-worker@.service"]["Service"]["ExecStart"][0]


# --- Dockerfile and release.sh


def test_dockerfile_builds_a_slim_non_root_image_from_the_lock() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11[\w.-]*-slim", text, re.M)
    assert "--constraint requirements.lock" in text
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    assert user.split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["tally"\]$', text, re.M)
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    assert_cli_command(yaml.safe_load(cmd))
    env_block = text.split("\nENV ", 2)[2].split("\nWORKDIR", 1)[0]
    names = re.findall(r"(\w+)=", env_block)
    assert_settings((n for n in names if not n.startswith(("PYTHON", "PATH"))), "the Dockerfile")


def test_release_script_migrates_with_an_env_file_read_literally(tmp_path: Path) -> None:
    script = DEPLOY / "release.sh"
    assert os.access(script, os.X_OK)
    env_file = tmp_path / "tally.env"
    env_file.write_text(
        f"# a comment\nDATABASE_URL=sqlite:///{tmp_path}/release.db\n"
        'TALLY_CURRENCY_PRECISION={"DOGE": 8}\nAURPAY_API_KEY=not$expanded\n\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(script), str(env_file)],
        env={"PATH": os.environ["PATH"], "TALLY": str(TALLY)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "database at revision" in done.stdout and "(current)" in done.stdout
    assert (tmp_path / "release.db").exists()
