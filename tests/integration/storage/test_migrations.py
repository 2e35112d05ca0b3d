"""Migrations: an empty database upgrades to head (idempotently), the schema matches the table
classes, a missing or behind schema is refused with the command to run, and the CLI says so."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from ledger.errors import SchemaNotReady
from ledger.model import GENESIS_HASH
from ledger.precision import PrecisionTable
from ledger.storage import engine as schema
from ledger.storage.open import open_ledger
from ledger.storage.sync_tables import SYNC_TABLES
from ledger.storage.tables import TABLES
from worker.app.cli import main

ALL_TABLES = (*TABLES, *SYNC_TABLES)  # the alert tables have their own parity test


def _cli(
    url: str, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", url)
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def test_upgrade_from_empty_database(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upgraded = (0, f"database at revision {schema.head_revision()}", "")
    assert _cli(db_url, ["db", "upgrade"], monkeypatch, capsys) == upgraded
    assert _cli(db_url, ["db", "upgrade"], monkeypatch, capsys) == upgraded  # idempotent
    engine = schema.make_engine(db_url)
    try:
        assert set(ALL_TABLES) <= set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            head = conn.execute(sa.text("SELECT id, seq, hash FROM ledger_head")).all()
        assert [tuple(row) for row in head] == [(1, 0, GENESIS_HASH)]
        assert schema.check_schema(engine) == schema.head_revision()
    finally:
        engine.dispose()


def test_schema_matches_the_table_classes(ledger_url: str) -> None:
    engine = schema.make_engine(ledger_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        engine.dispose()

    def table_of(diff: Any) -> str:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:]:
            name = getattr(part, "name", None) if not isinstance(part, str) else part
            table = getattr(part, "table", None)
            if table is not None:
                return str(table.name)
            if name in ALL_TABLES:
                return str(name)
        return ""

    # other modules may register tables their own migrations create; ours must match exactly
    assert [d for d in diffs if table_of(d) in ALL_TABLES] == []


def test_missing_schema_is_refused_with_the_fix(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SchemaNotReady) as refused:
        open_ledger(db_url, PrecisionTable(), planner=lambda *_: [])
    need = schema.head_revision()
    message = f"database schema is behind (rev none, need {need}): run `tally db upgrade`"
    assert str(refused.value) == message
    assert _cli(db_url, ["verify"], monkeypatch, capsys) == (1, "", f"tally: {message}")
    assert _cli(db_url, ["db", "status"], monkeypatch, capsys)[0] == 1


def _downgrade(engine: sa.Engine, target: str) -> None:
    config = schema.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, target)


@pytest.mark.parametrize("target", ["-1", "base"])
def test_behind_schema_is_refused_after_downgrade(ledger_url: str, target: str) -> None:
    engine = schema.make_engine(ledger_url)
    try:
        _downgrade(engine, target)
        behind = schema.current_revision(engine) or "none"
        assert behind != schema.head_revision()
        with pytest.raises(SchemaNotReady) as refused:
            schema.check_schema(engine)
        assert str(refused.value) == (
            f"database schema is behind (rev {behind}, need {schema.head_revision()}): "
            "run `tally db upgrade`"
        )
        assert schema.upgrade(engine) == schema.head_revision()
    finally:
        engine.dispose()


def test_downgrade_to_base_leaves_only_the_version_table(ledger_url: str) -> None:
    engine = schema.make_engine(ledger_url)
    try:
        _downgrade(engine, "base")
        assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()


def test_unknown_newer_revision_is_refused(ledger_url: str) -> None:
    engine = schema.make_engine(ledger_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaNotReady, match="rev 9999 is newer than this tally"):
            schema.check_schema(engine)
    finally:
        engine.dispose()


def test_auto_upgrade_opens_an_empty_sqlite_database(sqlite_url: str) -> None:
    store = open_ledger(sqlite_url, PrecisionTable(), auto_upgrade=True, planner=lambda *_: [])
    try:
        assert store.head() == (0, GENESIS_HASH)
        with store.engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, schema.SQLITE_BUSY_TIMEOUT_MS]
    finally:
        store.close()


def test_migrations_ship_inside_the_package() -> None:
    assert schema.MIGRATIONS.parent.name == "ledger"
    assert (schema.MIGRATIONS / "env.py").is_file()
    assert (schema.MIGRATIONS / "script.py.mako").is_file()
    assert list((schema.MIGRATIONS / "versions").glob("0001_*.py"))


def test_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    code, out, err = _cli(url, ["db", "upgrade"], monkeypatch, capsys)
    assert (code, out) == (1, "")
    assert err.startswith("tally: cannot use the database:") and "\n" not in err


def test_ebioro_alerts_keep_their_identity_across_the_rule_id_rename(ledger_url: str) -> None:
    """Migration 0005: an alert opened under ``ebioro-payment-amounts`` is the same alert under
    ``payment-amounts``, so it can still be judged (and resolved) after the upgrade."""
    engine = schema.make_engine(ledger_url)
    moment = "2026-12-01 00:00:00.000000"
    try:
        _downgrade(engine, "0004")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO alert (source, rule, subject_id, check_name, status, revision, "
                    "fingerprint, currency, expected, actual, difference, tolerance, detail, "
                    "snapshot_seqs, first_seen_at, last_seen_at, updated_at) VALUES ('ebioro', "
                    "'ebioro-payment-amounts', 'p1', 'received', 'open', 1, :fp, 'USD', '1', "
                    "'2', '1', '0', 'd', '[1]', :at, :at, :at)"
                ),
                {"fp": "0" * 64, "at": moment},
            )
        assert schema.upgrade(engine) == schema.head_revision()
        with engine.connect() as conn:
            rules = conn.execute(sa.text("SELECT source, rule FROM alert")).all()
        assert [tuple(row) for row in rules] == [("ebioro", "payment-amounts")]
    finally:
        engine.dispose()
