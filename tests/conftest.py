"""Shared fixtures: throwaway SQLite and PostgreSQL databases, a Redis namespace, settings.

A test that needs PostgreSQL or Redis skips locally with a message saying how to start it,
and fails under ``CI=true``: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("TALLY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TALLY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
)

# The gateways' documented example payloads, kept in the repo (sources: tests/fixtures/README.md).
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def aurpay_fixture() -> Callable[[str], object]:
    """Load ``tests/fixtures/aurpay/<name>`` with Decimal-exact JSON (``ledger.jsonx``)."""
    from ledger import jsonx

    def load(name: str) -> object:
        return jsonx.loads((FIXTURES / "aurpay" / name).read_bytes())

    return load


@pytest.fixture
def ebioro_fixture() -> Callable[[str], object]:
    """Load ``tests/fixtures/ebioro/<name>`` with Decimal-exact JSON (``ledger.jsonx``)."""
    from ledger import jsonx

    def load(name: str) -> object:
        return jsonx.loads((FIXTURES / "ebioro" / name).read_bytes())

    return load


def _service_missing(what: str, how: str) -> None:
    message = f"{what} is not reachable; start it with: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/tally-test.db"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    if not _port_open("127.0.0.1", 5432) and "TALLY_TEST_PG_URL" not in os.environ:
        _service_missing("PostgreSQL", PG_START)
    name = f"tally_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        _service_missing(f"PostgreSQL ({exc.__class__.__name__})", PG_START)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    request.applymarker(pytest.mark.postgres)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger_url(db_url: str) -> str:
    """``db_url`` (SQLite and PostgreSQL) with the ledger schema migrated to head."""
    from ledger.storage.engine import upgrade

    upgrade(db_url)
    return db_url


@pytest.fixture
def open_store() -> Iterator[Callable[..., object]]:
    """``open_store(url, planner=None)`` → a LedgerStore on ``url``, closed after the test.

    Without a planner the store posts no journal entries (a planner returning ``[]``).
    """
    from ledger.precision import PrecisionTable
    from ledger.storage.engine import make_engine
    from ledger.storage.store import LedgerStore

    stores: list[LedgerStore] = []

    def open_(url: str, planner: Callable[..., list[object]] | None = None) -> LedgerStore:
        store = LedgerStore(make_engine(url), PrecisionTable(), planner=planner or (lambda *_: []))
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()


@pytest.fixture
def redis_namespace() -> Iterator[tuple[str, str]]:
    """(redis_url, a unique key namespace); every key under the namespace is deleted after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        _service_missing("Redis", REDIS_START)
    namespace = f"tally-test-{uuid.uuid4().hex[:12]}"
    try:
        yield REDIS_URL, namespace
    finally:
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., object]]:
    """``sandbox_factory(**SandboxConfig fields)`` → a running Aurpay sandbox, stopped after."""
    from sandbox.aurpay import RunningSandbox, SandboxConfig, start_sandbox

    started: list[RunningSandbox] = []

    def start(**config: object) -> RunningSandbox:
        sandbox = start_sandbox(SandboxConfig(**config))  # type: ignore[arg-type]
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    """Tests never read the developer's .env or environment credentials by accident."""
    for key in list(os.environ):
        if key.startswith(("AURPAY_", "EBIORO_", "TALLY_")) and not key.startswith("TALLY_TEST_"):
            monkeypatch.delenv(key, raising=False)
    for key in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``worker.app.cli.main`` points the root logger at the current (captured) stderr; undo it so
    a later test never logs into a stream pytest has already closed."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


@pytest.fixture
def bean_check() -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Run the real ``bean-check`` on a ledger text; returns the finished process."""
    exe = Path(sys.executable).parent / "bean-check"
    found = str(exe) if exe.exists() else shutil.which("bean-check")
    if found is None:
        pytest.fail("bean-check not found: install the dev extras (beancount)")

    def check(text: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ledger.exports.beancount"
            path.write_text(text, encoding="utf-8")
            return subprocess.run(
                [found, str(path)], capture_output=True, text=True, check=False, timeout=120
            )

    return check
