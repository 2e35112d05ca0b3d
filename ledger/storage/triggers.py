"""DDL that makes the ledger append-only at the database level, against every statement.

``install_statements`` (migration 0001): every UPDATE and DELETE of ``ledger_snapshot``,
``ledger_journal`` and ``ledger_posting`` fails with "ledger is append-only"; on PostgreSQL
TRUNCATE fails too. ``guard_statements`` (migration 0004) closes what those leave open:

- SQLite's ``REPLACE`` (and ``INSERT OR REPLACE``) deletes the conflicting row without firing
  DELETE triggers, so every ledger table refuses an INSERT whose key is already taken;
- PostgreSQL skips ordinary triggers under ``session_replication_role = replica``, so the
  ledger's triggers are set ``ENABLE ALWAYS``;
- the chain head (``ledger_head``) cannot be deleted, and an UPDATE may only move it forward to
  a stored row with that very entry hash.

A superuser can still drop a trigger: ``tally verify --expect-head SEQ:HASH`` against a head
published elsewhere is what catches a rewritten tail. ``drop_statements`` exists for the
downgrades and for tests that must tamper with rows to prove ``tally verify`` notices.
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


# The columns that identify a row of each ledger table: an INSERT reusing one is a rewrite.
KEYS = {
    "ledger_snapshot": (("seq",), ("external_id", "source", "kind", "version")),
    "ledger_journal": (("seq",), ("key",)),
    "ledger_posting": (("journal_seq", "idx"),),
}
HEAD = "ledger_head"
PG_HEAD_FUNCTION = "ledger_head_forward"
# A head update is legal when it keeps the row and either stays put or lands on a stored row of a
# later seq whose entry hash it carries (the store inserts the rows first, then moves the head).
HEAD_MOVE_IS_BACKWARD = (
    "NEW.id <> OLD.id OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) "
    "OR (NEW.seq > OLD.seq "
    "AND NOT EXISTS (SELECT 1 FROM ledger_snapshot s WHERE s.seq = NEW.seq "
    "AND s.entry_hash = NEW.hash) "
    "AND NOT EXISTS (SELECT 1 FROM ledger_journal j WHERE j.seq = NEW.seq "
    "AND j.entry_hash = NEW.hash))"
)
HEAD_MESSAGE = f"{MESSAGE}: the chain head only moves forward along the chain"


def _taken(table: str) -> str:
    """SQL true when a row of ``table`` already holds one of NEW's keys."""
    return " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE "
        + " AND ".join(f"{column} = NEW.{column}" for column in key)
        + ")"
        for key in KEYS[table]
    )


def guard_statements(dialect: str) -> list[str]:
    """Migration 0004: no REPLACE, triggers that always fire, a head that only moves forward."""
    if dialect == "sqlite":
        return [
            *(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                f"WHEN {_taken(table)} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                for table in LEDGER_TABLES
            ),
            f"CREATE TRIGGER {HEAD}_no_insert BEFORE INSERT ON {HEAD} "
            f"WHEN EXISTS (SELECT 1 FROM {HEAD}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
            f"CREATE TRIGGER {HEAD}_no_delete BEFORE DELETE ON {HEAD} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
            f"CREATE TRIGGER {HEAD}_forward BEFORE UPDATE ON {HEAD} "
            f"WHEN {HEAD_MOVE_IS_BACKWARD} BEGIN SELECT RAISE(ABORT, '{HEAD_MESSAGE}'); END",
        ]
    if dialect == "postgresql":
        refuse = "USING ERRCODE = 'insufficient_privilege'"
        function = (
            f"CREATE OR REPLACE FUNCTION {PG_HEAD_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN IF TG_OP <> 'UPDATE' THEN RAISE EXCEPTION '{MESSAGE}: % on %', "
            f"TG_OP, TG_TABLE_NAME {refuse}; END IF; IF {HEAD_MOVE_IS_BACKWARD} THEN "
            f"RAISE EXCEPTION '{HEAD_MESSAGE}' {refuse}; END IF; RETURN NEW; END $$"
        )
        statements = [
            function,
            f"CREATE TRIGGER {HEAD}_guard BEFORE UPDATE OR DELETE ON {HEAD} "
            f"FOR EACH ROW EXECUTE FUNCTION {PG_HEAD_FUNCTION}()",
            f"CREATE TRIGGER {HEAD}_no_truncate BEFORE TRUNCATE ON {HEAD} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
        ]
        for table, triggers in _pg_triggers().items():
            statements += [f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {t}" for t in triggers]
        return statements
    raise ValueError(f"unsupported database dialect {dialect!r}")


def _pg_triggers() -> dict[str, tuple[str, ...]]:
    """Every append-only trigger on PostgreSQL, by table."""
    names = {table: (f"{table}_no_change", f"{table}_no_truncate") for table in LEDGER_TABLES}
    return {**names, HEAD: (f"{HEAD}_guard", f"{HEAD}_no_truncate")}


def guard_drop_statements(dialect: str) -> list[str]:
    """Undo ``guard_statements`` (the downgrade of migration 0004)."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in _sqlite_guards()]
    if dialect == "postgresql":
        return [
            *(
                f"ALTER TABLE {table} ENABLE TRIGGER {t}"
                for table in LEDGER_TABLES
                for t in _pg_triggers()[table]
            ),
            f"DROP FUNCTION IF EXISTS {PG_HEAD_FUNCTION}() CASCADE",
            f"DROP TRIGGER IF EXISTS {HEAD}_no_truncate ON {HEAD}",
        ]
    raise ValueError(f"unsupported database dialect {dialect!r}")


def _sqlite_guards() -> list[str]:
    return [
        *(f"{table}_no_replace" for table in LEDGER_TABLES),
        f"{HEAD}_no_insert",
        f"{HEAD}_no_delete",
        f"{HEAD}_forward",
    ]


def drop_statements(dialect: str) -> list[str]:
    """Every append-only trigger gone: for the initial downgrade and for tampering tests."""
    if dialect == "sqlite":
        return [
            *(
                f"DROP TRIGGER IF EXISTS {table}_no_{op}"
                for table in LEDGER_TABLES
                for op in ("update", "delete")
            ),
            *(f"DROP TRIGGER IF EXISTS {name}" for name in _sqlite_guards()),
        ]
    if dialect == "postgresql":
        return [  # CASCADE takes each function's triggers along
            f"DROP FUNCTION IF EXISTS {PG_HEAD_FUNCTION}() CASCADE",
            f"DROP FUNCTION IF EXISTS {PG_FUNCTION}() CASCADE",
        ]
    raise ValueError(f"unsupported database dialect {dialect!r}")
