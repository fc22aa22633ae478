"""Alembic environment: runs on the connection the store hands over.

The migration scripts are self-contained (their own frozen table shapes, no live code), so
this environment needs no metadata: tests/test_store_migrations.py checks that a database
migrated to head has exactly the schema ``swanwatch.store.tables`` declares.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through swanwatch.store.Store.upgrade()")

context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
