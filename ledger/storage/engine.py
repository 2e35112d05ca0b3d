"""Engines (SQLite pragmas, PostgreSQL pool), migrations and the schema check, below the store.

SQLite runs in WAL mode with a busy timeout, foreign keys on, and every transaction started
with ``BEGIN IMMEDIATE`` (the write lock up front, so two appenders queue instead of failing
to upgrade a read lock); readers opt out with ``read_only(engine)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Engine

from ledger.errors import DatabaseUnavailable, SchemaNotReady

MIGRATIONS = Path(__file__).parents[1] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_BEGIN = "tally_sqlite_begin"  # execution option: "IMMEDIATE" (default) or "DEFERRED"


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver for both."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def make_engine(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")  # a ledger: a commit survives power loss
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql("BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

    return engine


def read_only(engine: Engine) -> Engine:
    """The same engine whose SQLite transactions take no write lock (a no-op on PostgreSQL)."""
    return engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "unknown error"
        raise DatabaseUnavailable(f"cannot use the database: {reason}") from None


def alembic_config() -> Config:
    """Alembic settings built in code: the migrations live in the package, no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with _reachable(), read_only(engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(target: str | Engine) -> str:
    """Apply every migration up to head; return the revision the database is now at."""
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        config = alembic_config()
        with _reachable(), engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return current_revision(engine) or "none"
    finally:
        if isinstance(target, str):
            engine.dispose()


def check_schema(engine: Engine) -> str:
    """Return the database's revision, or raise ``SchemaNotReady`` unless it is the head."""
    current, need = current_revision(engine), head_revision()
    if current == need:
        return current
    script = ScriptDirectory.from_config(alembic_config())
    known = current is None or current in {rev.revision for rev in script.walk_revisions()}
    if not known:
        raise SchemaNotReady(
            f"database schema rev {current} is newer than this tally knows (need {need}): "
            "deploy the matching tally version"
        )
    raise SchemaNotReady(
        f"database schema is behind (rev {current or 'none'}, need {need}): run `tally db upgrade`"
    )
