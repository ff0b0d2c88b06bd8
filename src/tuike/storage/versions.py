"""Version counters that tell in-process caches when to drop what they hold."""

from __future__ import annotations

from sqlalchemy import Connection, select

from tuike.storage import tables as t
from tuike.storage.db import upsert_add


def bump(conn: Connection, name: str) -> None:
    """Increase a version counter by one (creating it at 1)."""
    upsert_add(conn, t.cache_versions, ("name",), [{"name": name, "version": 1}], ("version",))


def current(conn: Connection, name: str) -> int:
    """Return a version counter (0 when never bumped)."""
    value = conn.execute(
        select(t.cache_versions.c.version).where(t.cache_versions.c.name == name)
    ).scalar()
    return int(value or 0)
