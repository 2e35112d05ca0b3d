"""Every command the docs show is run, against real sandboxes, and prints what the docs say.

The convention (also in docs/architecture.md, "Documented commands"):

- Only fenced blocks tagged ``console`` run; ``sh`` blocks (setup, synopses, deployment
  snippets) and untagged ones are for reading only.
- In a ``console`` block, a line starting with ``$ `` is a command, run by bash in a fresh
  directory per page (the page's commands run in order and share it, and a ``.env`` written
  there), with the virtualenv's ``bin`` first on ``PATH`` and no tally setting from outside.
  It must exit 0.
- The lines under a command are its expected output: each must match a line of what the
  command printed (stdout and stderr), in order; ``…`` matches anything. Lines it printed
  that the docs leave out are fine.
- A long-running command (``tally sandbox`` without ``--env``, ``tally run``, ``worker``,
  ``scheduler``, ``callbacks``, ``console``) is started in the background, its expected output
  is read up to its last expected line, and it is stopped when the page ends.
- The ports 8077 and 8079 (the sandboxes' defaults) are replaced by free ports, in commands and
  expected output alike, so a page runs beside anything already listening there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
SERVING = re.compile(r"^tally (sandbox(?!.*--env)|run|worker|scheduler|callbacks|console)\b")
DEFAULT_PORTS = ("8077", "8079")
TIMEOUT = 180


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


def commands(page: Path) -> list[Command]:
    found: list[Command] = []
    for block in BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append(Command(line[2:]))
            elif line.strip() and found:
                found[-1].expected.append(line)
    return found


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("…")))


def unmatched(expected: list[str], lines: Iterator[str]) -> str | None:
    """The first expected line no printed line matches (in order), or None."""
    for want in expected:
        pattern = _pattern(want)
        if not any(pattern.fullmatch(line.rstrip()) for line in lines):
            return want
    return None


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AURPAY_", "EBIORO_", "TALLY_"))
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    env.pop("NO_COLOR", None)
    return env


DOCUMENTED = [(page, cmds) for page in PAGES if (cmds := commands(page))]


def test_the_readme_tour_is_executed() -> None:
    pages = {page.name: cmds for page, cmds in DOCUMENTED}
    tour = [c.line for c in pages["README.md"]]
    for step in ("tally demo", "tally sync", "tally alerts", "tally verify", "tally doctor"):
        assert any(line.startswith(step) for line in tour), step
    assert any(SERVING.match(line) for line in tour)  # the sandbox, in the background


@pytest.mark.parametrize(
    "page,documented",
    DOCUMENTED,
    ids=[str(page.relative_to(REPO)) for page, _ in DOCUMENTED],
)
def test_documented_commands_run_as_documented(
    page: Path, documented: list[Command], tmp_path: Path
) -> None:
    ports = {port: _free_port() for port in DEFAULT_PORTS}

    def local(text: str) -> str:
        for default, free in ports.items():
            text = text.replace(default, free)
        return text

    env = _environment()
    background: list[subprocess.Popen[str]] = []
    try:
        for command in documented:
            line, expected = local(command.line), [local(e) for e in command.expected]
            if SERVING.match(line):
                background.append(_serve(line, expected, env, tmp_path))
                continue
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", line],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            printed = (done.stdout + done.stderr).splitlines()
            assert done.returncode == 0, f"$ {line}\nexit {done.returncode}\n" + "\n".join(printed)
            assert "Traceback" not in done.stderr, f"$ {line}\n{done.stderr}"
            missing = unmatched(expected, iter(printed))
            assert missing is None, f"$ {line}\nexpected: {missing}\nprinted:\n" + "\n".join(
                printed
            )
    finally:
        for process in background:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.stdout is not None:
                process.stdout.close()


def _serve(line: str, expected: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start a long-running command; read its output until its last expected line."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {line}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed: list[str] = []
    last = _pattern(expected[-1]) if expected else None
    while last is not None:
        text = process.stdout.readline()
        if not text:
            break
        printed.append(text.rstrip("\n"))
        if last.fullmatch(printed[-1].rstrip()):
            break
    missing = unmatched(expected, iter(printed))
    assert missing is None, f"$ {line}\nexpected: {missing}\nprinted:\n" + "\n".join(printed)
    return process


def test_bean_check_is_where_the_tour_expects_it() -> None:
    assert shutil.which("bean-check", path=str(Path(sys.executable).parent))
