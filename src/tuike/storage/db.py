"""Engines and transactions for SQLite (one writer, WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool


class Database:
    """One database: an engine plus the way to open read and write transactions.

    On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` so that writers
    queue on the database lock up front instead of failing to upgrade a read lock.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=NullPool if path in ("", ":memory:") else None,
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = create_engine(
                url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
        self._writer = self.engine.execution_options(tuike_write=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Open a write transaction; commit on success, roll back on error."""
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Open a read-only unit of work (a deferred transaction)."""
        with self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is broken).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("tuike_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def insert_for(conn: Connection, table: Table) -> Any:
    """Return the dialect's INSERT (with ON CONFLICT support) for a table."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert_add(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    rows: Sequence[dict[str, Any]],
    counters: Sequence[str],
) -> None:
    """Insert rows or add their counters to the existing row with the same keys."""
    if not rows:
        return
    stmt = insert_for(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + stmt.excluded[name] for name in counters},
    )
    conn.execute(stmt, list(rows))
