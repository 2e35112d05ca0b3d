"""Many rows into one table in one go: ``executemany``, or ``COPY … FROM STDIN`` on PostgreSQL.

An append's rows are written while it holds the chain head's lock, so their cost caps how far
more writers can go. On PostgreSQL, COPY halves it against ``executemany``
(``benchmarks/writers_bench.py``). Each value goes through its column type's bind processor as
an INSERT would (``Money`` still refuses an inexact amount), and a driver error is raised as
SQLAlchemy's wrapped error, as an INSERT's would be (a lost connection invalidated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, column names) into ``table``."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    columns = tuple(rows[0])
    statement, processors = _copy_plan(table, columns, conn.dialect)
    dbapi = conn.dialect.loaded_dbapi
    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection in a transaction
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[column] for column in columns]
                copy.write_row(
                    [v if p is None else p(v) for v, p in zip(values, processors, strict=True)]
                )
    except dbapi.Error as error:
        # As SQLAlchemy does for its own statements: a lost connection is dropped from the
        # pool (the transaction with it), and the error says so.
        lost = conn.dialect.is_disconnect(error, raw, None)
        if lost:
            conn.invalidate(error)
        raise DBAPIError.instance(
            statement, None, error, dbapi.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from error


@lru_cache(maxsize=32)
def _copy_plan(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[Callable[[Any], Any] | None]]:
    quote = dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    # The dialect's own processors, as an INSERT uses: the generic Numeric's would send a float.
    return statement, [
        table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
    ]
