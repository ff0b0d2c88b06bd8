"""Scratch databases for the benchmarks: a temp SQLite file and a throwaway PostgreSQL one."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tuike.storage.migrate import upgrade


@contextmanager
def scratch_databases(pg_admin: str | None, prefix: str) -> Iterator[list[tuple[str, str]]]:
    """Yield migrated [("SQLite", url), ("PostgreSQL", url)] (PostgreSQL only with an admin
    URL of a server where a database may be created); the PostgreSQL one is dropped after."""
    targets = [("SQLite", f"sqlite:///{tempfile.mkdtemp()}/{prefix}.db")]
    name = f"{prefix}_{int(time.time())}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT") if pg_admin else None
    if admin is not None:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        targets.append(
            ("PostgreSQL", make_url(pg_admin).set(database=name).render_as_string(False))
        )
    try:
        for _, url in targets:
            upgrade(url)
        yield targets
    finally:
        if admin is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
