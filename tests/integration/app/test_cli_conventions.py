"""The conventions every ``tally`` command keeps for a new user: a version, a fast --help,
descriptions, JSON reports, fail-fast syncs, a doctor, read-only commands that never create a
ledger, quiet broken pipes, and a sandbox that says how to reach it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.aurpay import RunningSandbox
from tests.helpers.sandbox import sandbox_env
from worker.app.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[3]
TALLY = [sys.executable, "-c", "import sys; from worker.app.cli import main; sys.exit(main())"]
HEAVY = ("sqlalchemy", "alembic", "dramatiq", "httpx", "redis", "pydantic")


def run(
    *argv: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [*TALLY, *argv], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_version_and_a_help_that_imports_nothing_heavy(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom worker.app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip().endswith("[]"), loaded.stdout  # the cost of --help is argparse
    assert "doctor" in loaded.stdout and "sandbox" in loaded.stdout

    version = run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("tally ")


def test_every_sub_command_has_a_description_and_report_commands_speak_json() -> None:
    parser = build_parser()

    def walk(p: Any, path: list[str]) -> Any:
        for action in p._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    yield [*path, name], sub
                    yield from walk(sub, [*path, name])

    parsers = dict((" ".join(path), sub) for path, sub in walk(parser, []))
    assert set(COMMANDS) <= set(parsers)
    for name, sub in parsers.items():
        assert sub.description, f"tally {name} has no description"
    for name in ("status", "health", "verify", "sync", "reconcile", "db status", "doctor"):
        formats = [a for a in parsers[name]._actions if a.dest == "format"]
        assert formats and "json" in formats[0].choices, name


def test_read_only_commands_never_create_a_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["status"], ["db", "status"], ["export", "journal"], ["verify"], ["health"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err == "tally: no ledger at sqlite:///tally.db (run tally sync or tally db upgrade)"
    assert not (tmp_path / "tally.db").exists()


def test_json_reports_parse(
    sqlite_url: str,
    sandbox_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(seed=31, orders=30)
    for name, value in sandbox_env(sandbox, sqlite_url).items():
        monkeypatch.setenv(name, value)

    assert main(["sync", "--format", "json"]) == 0  # once by default
    synced = json.loads(capsys.readouterr().out)
    assert synced["ok"] and synced["runs"][0]["source"] == "aurpay"
    assert synced["runs"][0]["new_snapshots"] > 0

    documents = {}
    for argv in (["status"], ["health"], ["verify"], ["reconcile"], ["db", "status"]):
        main([*argv, "--format", "json"])
        documents[argv[0]] = json.loads(capsys.readouterr().out)
    assert documents["verify"]["ok"] and documents["verify"]["entries"] > 0
    assert documents["db"]["current"] is True
    assert documents["status"]["sources"][0]["latest_run"]["state"] == "finished"
    assert documents["status"]["chain_head"] == documents["verify"]["head"]
    assert "ready" in documents["health"]
    assert documents["reconcile"]["mode"] in ("incremental", "full")


def test_an_unreachable_gateway_ends_sync_in_seconds_with_one_line(tmp_path: Path) -> None:
    env = {
        "AURPAY_API_KEY": "k",
        "AURPAY_BASE_URL": "http://127.0.0.1:1",
        "TALLY_LOG_LEVEL": "error",
    }
    started = time.monotonic()
    result = run("sync", env=env, cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "tally: source aurpay: cannot connect to http://127.0.0.1:1 (connection refused); "
        "check AURPAY_BASE_URL and that the gateway is up"
    ]


def test_an_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    env = {"AURPAY_API_KEY": "k", "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = run("sync", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to Redis at redis://127.0.0.1:1/0" in lines[0]


def test_doctor_passes_against_a_sandbox_and_names_the_key_it_refuses(
    sqlite_url: str,
    sandbox_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox: RunningSandbox = sandbox_factory(seed=32, orders=5)
    for name, value in sandbox_env(sandbox, sqlite_url).items():
        monkeypatch.setenv(name, value)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("all checks passed")
    assert "source aurpay" in out

    monkeypatch.setenv("AURPAY_API_KEY", "wrong-key-123")
    assert main(["doctor", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["source aurpay"]
    assert "HTTP 401" in failed[0]["detail"] and failed[0]["fix"] == "check AURPAY_API_KEY"
    assert "wrong-key-123" not in json.dumps(report)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*TALLY, "sandbox", "--env"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader went away (`| head -0`)
    code = process.wait(timeout=60)
    err = process.stderr.read()
    process.stderr.close()
    assert err == "" and code in (0, 141)  # 0 when it wrote before the close


def test_sandbox_env_prints_a_dotenv_snippet_the_client_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "--env", "--port", "8177"]) == 0
    lines = capsys.readouterr().out.splitlines()
    values = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
    assert values["AURPAY_BASE_URL"] == "http://127.0.0.1:8177"
    assert values["AURPAY_API_KEY"]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")

    from worker.config import load_settings

    assert list(load_settings().sources) == ["aurpay"]  # read from .env as written


def test_an_interrupted_sync_shows_as_interrupted(
    sqlite_url: str,
    sandbox_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from worker.app.commands import sync as command

    sandbox = sandbox_factory(seed=33, orders=120, latency_ms=60)
    for name, value in sandbox_env(sandbox, sqlite_url, aurpay_page_size=10).items():
        monkeypatch.setenv(name, value)
    real = command.sync_once

    def ctrl_c(*args: Any, **kwargs: Any) -> Any:
        def press(_line: str) -> None:
            raise KeyboardInterrupt

        return real(*args, **{**kwargs, "on_progress": press})  # Ctrl-C at the first progress

    monkeypatch.setattr(command, "sync_once", ctrl_c)
    assert main(["sync"]) == 130
    assert capsys.readouterr().err.strip().endswith("tally: interrupted")

    main(["status", "--format", "json"])
    run = json.loads(capsys.readouterr().out)["sources"][0]["latest_run"]
    assert run["state"] == "interrupted"
