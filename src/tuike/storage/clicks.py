"""The click log: bulk inserts on the hot path, straight to the driver.

On SQLite a group is one ``executemany`` per table. On PostgreSQL the clicks go
in with ``COPY … FROM STDIN`` and the rollups with one ``INSERT … SELECT FROM
json_array_elements(…) ON CONFLICT`` statement: two round trips per group, whatever its
size, and no per-row statement for the server to plan and execute (``bench/writer.py``
measures both against the ``executemany`` path, which stays as ``method="executemany"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, select

from tuike.domain.tracking import ClickRecord
from tuike.storage import tables as t

COLUMNS = tuple(c.name for c in t.clicks.columns)
# The tuples built in insert_clicks follow this order; a schema change must change both.
assert COLUMNS == (
    "id",
    "clicked_at",
    "program_id",
    "link_id",
    "affiliate_id",
    "creative_id",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "aff_click_id",
    "landing_url",
    "ip",
    "user_agent",
    "referer",
    "country",
    "device",
    "visitor",
    "is_unique",
    "is_bot",
    "fraud_score",
    "fraud_reasons",
    "invalid",
), "clicks columns changed: update storage/clicks.insert_clicks"


@lru_cache(maxsize=4)
def _insert_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    # Names come from the schema; every value is a bound parameter.
    return f"INSERT INTO clicks ({names}) VALUES ({', '.join([mark] * len(COLUMNS))})"  # noqa: S608


def _sqlite_time(at: datetime) -> str:
    # The text form SQLAlchemy's SQLite DATETIME writes and reads (naive UTC, microseconds).
    u = at.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"
    )


def insert_clicks(
    conn: Connection, records: Sequence[ClickRecord], *, method: str = "best"
) -> None:
    """Insert a batch of clicks straight to the driver, skipping per-row ORM processing.

    Building SQLAlchemy bind parameters costs more per row than SQLite's insert itself;
    values are converted here, once, in column order. ``method`` is ``best`` (COPY on
    PostgreSQL, executemany on SQLite) or ``executemany`` (the benchmark's baseline).
    """
    dialect = conn.dialect.name
    as_time: Any = _sqlite_time if dialect == "sqlite" else (lambda at: at)
    rows = [
        (
            c.id,
            as_time(c.clicked_at),
            c.program_id,
            c.link_id,
            c.affiliate_id,
            c.creative_id,
            *c.subs,
            c.aff_click_id,
            c.landing_url[:2048],
            c.ip,
            c.user_agent[:512],
            c.referer[:2048],
            c.country,
            c.device,
            c.visitor,
            c.is_unique,
            c.is_bot,
            c.fraud_score,
            c.fraud_reasons,
            c.invalid,
        )
        for c in records
    ]
    if dialect == "postgresql" and method == "best":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(_COPY_CLICKS) as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.exec_driver_sql(_insert_sql(dialect), rows)


# Names come from the schema, never from input.
_COPY_CLICKS = f"COPY clicks ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in COLUMNS)}) FROM STDIN"


ROLLUP_COUNTERS = ("impressions", "clicks", "unique_clicks", "bot_clicks", "invalid_clicks")


@lru_cache(maxsize=4)
def _rollup_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    columns = (*t.ROLLUP_KEYS, *ROLLUP_COUNTERS)
    add = ", ".join(f'"{c}" = click_rollups."{c}" + excluded."{c}"' for c in ROLLUP_COUNTERS)
    # Names come from the schema; every value is a bound parameter.
    return (
        f"INSERT INTO click_rollups ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}) "  # noqa: S608
        f"VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT ({', '.join(f'{chr(34)}{k}{chr(34)}' for k in t.ROLLUP_KEYS)}) "
        f"DO UPDATE SET {add}"
    )


@lru_cache(maxsize=1)
def _rollup_json_sql() -> str:
    columns = (*t.ROLLUP_KEYS, *ROLLUP_COUNTERS)
    types = {"hour": "timestamptz", "country": "text", "device": "text"}
    values = ", ".join(
        f"(e->>{i})::{types.get(c, 'text' if c.startswith('sub') else 'bigint')}"
        for i, c in enumerate(columns)
    )
    add = ", ".join(f'"{c}" = click_rollups."{c}" + excluded."{c}"' for c in ROLLUP_COUNTERS)
    # Names come from the schema; the rows are one bound JSON array of arrays.
    return (
        f"INSERT INTO click_rollups ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}) "  # noqa: S608
        f"SELECT {values} FROM json_array_elements(%s::json) AS e "
        f"ON CONFLICT ({', '.join(f'{chr(34)}{k}{chr(34)}' for k in t.ROLLUP_KEYS)}) "
        f"DO UPDATE SET {add}"
    )


def add_click_rollups(
    conn: Connection, rows: Sequence[tuple[Any, ...]], *, method: str = "best"
) -> None:
    """Add counters to the hourly click rollups, straight to the driver.

    Each row is ``(*ROLLUP_KEYS, *ROLLUP_COUNTERS)`` with
    the hour as an aware datetime, one row per key. Rows are written in key order, so
    that two writers adding to the same keys lock them in the same order (no deadlock).
    On PostgreSQL (``method="best"``) the whole group is one statement over a JSON array.
    """
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: r[: len(t.ROLLUP_KEYS)])
    dialect = conn.dialect.name
    if dialect == "postgresql" and method == "best":
        # One JSON text parameter: the json module encodes it in C, where psycopg would
        # adapt one Python array element at a time (most of the group's cost).
        rows_json = json.dumps([(r[0].isoformat(), *r[1:]) for r in ordered])
        conn.exec_driver_sql(_rollup_json_sql(), (rows_json,))
        return
    if dialect == "sqlite":
        ordered = [(_sqlite_time(r[0]), *r[1:]) for r in ordered]
    conn.exec_driver_sql(_rollup_sql(dialect), ordered)


def latest_click(conn: Connection, program_id: int, since: datetime) -> str | None:
    """Return the id of a program's newest valid click since a time (for test conversions)."""
    return conn.execute(
        select(t.clicks.c.id)
        .where(
            t.clicks.c.program_id == program_id,
            t.clicks.c.clicked_at >= since,
            t.clicks.c.invalid.is_(False),
        )
        .order_by(t.clicks.c.clicked_at.desc())
        .limit(1)
    ).scalar()
