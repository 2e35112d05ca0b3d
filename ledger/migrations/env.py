"""Alembic environment: runs the migrations on the connection ``ledger.storage.engine.upgrade``
hands in.

There is no alembic.ini: ``ledger.storage.engine`` builds the Config in code, so the migrations
ship inside
the package and run wherever ``tally`` is installed.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

# Any constant: serialises concurrent `tally db upgrade` runs against one PostgreSQL database.
PG_MIGRATION_LOCK = 7_411_208_001

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through ledger.storage.engine.upgrade (`tally db upgrade`)")

context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"))
    context.run_migrations()
