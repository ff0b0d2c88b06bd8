"""Migrations: the schema Alembic builds is exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tuike.storage.migrate import upgrade
from tuike.storage.tables import metadata


def test_migrated_schema_matches_the_tables(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    assert diff == [], f"model changed without a migration: {diff}"


def test_migrate_twice_is_harmless(db):
    upgrade(db.url)
    upgrade(db.url)
    with db.read() as conn:
        version = conn.exec_driver_sql("select version_num from alembic_version").scalar()
    assert version
