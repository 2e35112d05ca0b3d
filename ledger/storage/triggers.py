"""DDL that makes the ledger tables append-only at the database level.

On both databases every UPDATE and DELETE of ``ledger_snapshot``, ``ledger_journal`` and
``ledger_posting`` fails with "ledger is append-only"; on PostgreSQL TRUNCATE fails too.
Installed by the initial migration; ``drop_statements`` exists for the downgrade (and for tests
that must tamper with rows to prove ``tally verify`` notices).
"""

from __future__ import annotations

from ledger.storage.tables import LEDGER_TABLES

MESSAGE = "ledger is append-only"
PG_FUNCTION = "ledger_append_only"


def install_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            for table in LEDGER_TABLES
            for op in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        function = (
            f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}: % on %', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        statements = [function]
        for table in LEDGER_TABLES:
            statements.append(
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )
        return statements
    raise ValueError(f"unsupported database dialect {dialect!r}")


def drop_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{op}"
            for table in LEDGER_TABLES
            for op in ("update", "delete")
        ]
    if dialect == "postgresql":
        return [f"DROP FUNCTION IF EXISTS {PG_FUNCTION}() CASCADE"]  # takes its triggers along
    raise ValueError(f"unsupported database dialect {dialect!r}")
