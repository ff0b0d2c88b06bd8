"""Engines and transactions for SQLite (one writer, WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, TextClause, bindparam, create_engine, event, text
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
    # FULL: a committed click survives power loss too, not only a crash of the process.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Reports scan rollups: read them through a memory map and a 32 MiB page cache per
    # connection rather than SQLite's default 2 MiB, re-read from the OS on every query.
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA cache_size=-32768")
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
    """Insert rows or add their counters to the existing row with the same keys.

    Every row carries the same columns.
    """
    if not rows:
        return
    stmt = _on_conflict(conn.dialect.name, table, tuple(rows[0]), tuple(keys), tuple(counters))
    conn.execute(stmt, list(rows))


def insert_ignore(
    conn: Connection, table: Table, values: dict[str, Any], keys: Sequence[str]
) -> int:
    """Insert a row unless one with the same unique ``keys`` exists; return rows inserted."""
    stmt = _on_conflict(conn.dialect.name, table, tuple(values), tuple(keys), ())
    return conn.execute(stmt, values).rowcount


@lru_cache(maxsize=256)
def _on_conflict(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    add: tuple[str, ...],
) -> TextClause:
    # SQLAlchemy 2.0 never caches the dialects' INSERT ... ON CONFLICT constructs
    # (inherit_cache = False): built per call, their SQL was compiled anew every time,
    # milliseconds per conversion. The same SQL as typed text is built once and cached.
    unknown = [c for c in (*columns, *keys, *add) if c not in table.c]
    if unknown:  # only the schema's own names ever reach the SQL below
        raise ValueError(f"{table.name} has no columns {unknown}")
    quote = (
        postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    ).identifier_preparer.quote
    target = quote(table.name)
    action = "DO NOTHING"
    if add:
        action = "DO UPDATE SET " + ", ".join(
            f"{quote(c)} = {target}.{quote(c)} + excluded.{quote(c)}" for c in add
        )
    sql = (
        f"INSERT INTO {target} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) {action}"
    )
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))
