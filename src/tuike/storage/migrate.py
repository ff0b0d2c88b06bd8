"""Apply Alembic migrations from code (`tuike migrate`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """Return an Alembic config for a database URL, independent of the working folder."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (safe to run twice)."""
    command.upgrade(alembic_config(url), revision)


def pending(url: str) -> bool:
    """Tell whether the database at ``url`` lacks migrations (or was migrated elsewhere)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from tuike.storage.db import Database

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        db.dispose()
    return current != heads
