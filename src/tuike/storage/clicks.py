"""The click log: bulk inserts on the hot path, straight to the driver."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

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


def insert_clicks(conn: Connection, records: Sequence[ClickRecord]) -> None:
    """Insert a batch of clicks with one executemany, skipping per-row ORM processing.

    Building SQLAlchemy bind parameters costs more per row than SQLite's insert itself;
    values are converted here, once, in column order.
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
        )
        for c in records
    ]
    conn.exec_driver_sql(_insert_sql(dialect), rows)
