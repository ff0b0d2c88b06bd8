"""Alembic environment: one set of migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tuike.config import get_settings
from tuike.storage.db import Database
from tuike.storage.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations against the configured database (or a connection handed in)."""
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    url = config.attributes.get("url") or get_settings().database_url
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tuike migrate`")
run_migrations_online()
