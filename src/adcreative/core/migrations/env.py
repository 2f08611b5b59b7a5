"""Alembic's environment: migrations run on the connection :mod:`adcreative.core.migrations` hands over
(never a URL of their own), inside its transaction."""

from __future__ import annotations

from alembic import context

from adcreative.core.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
