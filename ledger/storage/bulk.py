"""Many rows into one table in one go: ``COPY … FROM STDIN`` on PostgreSQL, else the driver's
``executemany`` of one prepared INSERT.

An append's rows are written while it holds the chain head's lock, so their cost caps how far
more writers can go. On PostgreSQL, COPY halves it against ``executemany``
(``benchmarks/writers_bench.py``). Elsewhere (SQLite), the INSERT goes to the driver as text with
values already bound: SQLAlchemy's per-row parameter handling for a compiled ``insert()`` was
two thirds of the write. Either way each value goes through its column type's bind processor as
SQLAlchemy's INSERT would (``Money`` still refuses an inexact amount), and a driver error is
raised as SQLAlchemy's wrapped error, as an INSERT's would be (a lost connection invalidated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, column names) into ``table``."""
    if not rows:
        return
    columns = tuple(rows[0])
    if conn.dialect.name != "postgresql":
        statement, processors = _insert_plan(table, columns, conn.dialect)
        # exec_driver_sql: SQLAlchemy's execution, events and error wrapping, none of its
        # per-row parameter processing (done here, once per value).
        conn.exec_driver_sql(statement, [_bound(row, columns, processors) for row in rows])
        return
    statement, processors = _copy_plan(table, columns, conn.dialect)
    dbapi = conn.dialect.loaded_dbapi
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection in a transaction
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(_bound(row, columns, processors))
    except dbapi.Error as error:
        # As SQLAlchemy does for its own statements: a lost connection is dropped from the
        # pool (the transaction with it), and the error says so.
        lost = conn.dialect.is_disconnect(error, raw, None)
        if lost:
            conn.invalidate(error)
        raise DBAPIError.instance(
            statement, None, error, dbapi.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from error


Processors = list[Callable[[Any], Any] | None]


def _bound(
    row: dict[str, Any], columns: tuple[str, ...], processors: Processors
) -> tuple[Any, ...]:
    """The row's values in column order, each as its column's bind processor makes it."""
    return tuple(
        row[c] if p is None else p(row[c]) for c, p in zip(columns, processors, strict=True)
    )


def _processors(table: Table, columns: tuple[str, ...], dialect: Dialect) -> Processors:
    # The dialect's own processors, as an INSERT uses: the generic Numeric's would send a float.
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def _quoted(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    return f"{quote(table.name)} ({', '.join(quote(c) for c in columns)})"


@lru_cache(maxsize=32)
def _copy_plan(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, Processors]:
    statement = f"COPY {_quoted(table, columns, dialect)} FROM STDIN"
    return statement, _processors(table, columns, dialect)


@lru_cache(maxsize=32)
def _insert_plan(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, Processors]:
    if dialect.paramstyle != "qmark":  # pragma: no cover - SQLite's, the one other dialect
        raise NotImplementedError(f"bulk insert with paramstyle {dialect.paramstyle}")
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {_quoted(table, columns, dialect)} VALUES ({marks})"
    return statement, _processors(table, columns, dialect)
