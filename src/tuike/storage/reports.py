"""Report queries: sums over the hourly rollups, never over raw clicks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Date, cast, func, literal_column, select

from tuike.storage import tables as t

# Report dimension -> rollup column.
DIMENSION_COLUMNS = {
    "program": "program_id",
    "affiliate": "affiliate_id",
    "link": "link_id",
    "creative": "creative_id",
    "sub1": "sub1",
    "sub2": "sub2",
    "sub3": "sub3",
    "sub4": "sub4",
    "sub5": "sub5",
    "country": "country",
    "device": "device",
    "event": "event",
    "status": "status",
}
CONVERSION_ONLY = ("event", "status")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a caller may see: some programs, one affiliate, or everything."""

    program_ids: tuple[int, ...] | None = None
    affiliate_id: int | None = None


def _local_day(conn: Connection, table: Any, offset: int) -> Any:
    """Return the SQL of the local date of an hour bucket, for a fixed UTC offset.

    The offset is rendered as a literal (an int, never user text) so that the same
    expression stands in SELECT and GROUP BY, as PostgreSQL requires.
    """
    seconds = int(offset)
    if conn.dialect.name == "sqlite":
        return func.date(table.c.hour, literal_column(f"'{seconds:+d} seconds'")).label("day")
    shifted = func.timezone("UTC", table.c.hour) + literal_column(f"interval '{seconds} seconds'")
    # A cast to date costs PostgreSQL far less per row than to_char (30 % of the query).
    return cast(shifted, Date).label("day")


def _columns(
    conn: Connection, table: Any, dims: Sequence[str], with_hour: bool, day_offset: int | None
) -> list[Any]:
    cols = [table.c.program_id]
    if with_hour:
        cols.append(table.c.hour)
    elif day_offset is not None:
        cols.append(_local_day(conn, table, day_offset))
    for dim in dims:
        name = DIMENSION_COLUMNS[dim]
        if name != "program_id" and name in table.c:
            cols.append(table.c[name])
    return cols


def _where(table: Any, start: datetime, end: datetime, scope: Scope) -> list[Any]:
    conds = [table.c.hour >= start, table.c.hour < end]
    if scope.program_ids is not None:
        conds.append(table.c.program_id.in_(scope.program_ids or (-1,)))
    if scope.affiliate_id is not None:
        conds.append(table.c.affiliate_id == scope.affiliate_id)
    return conds


def click_groups(
    conn: Connection,
    dims: Sequence[str],
    start: datetime,
    end: datetime,
    scope: Scope,
    with_hour: bool,
    day_offset: int | None = None,
) -> list[Any]:
    """Sum click counters per program (and hour or local day) and the dimensions."""
    r = t.click_rollups
    cols = _columns(conn, r, [d for d in dims if d not in CONVERSION_ONLY], with_hour, day_offset)
    stmt = (
        select(
            *cols,
            func.sum(r.c.impressions).label("impressions"),
            func.sum(r.c.clicks).label("clicks"),
            func.sum(r.c.unique_clicks).label("unique_clicks"),
            func.sum(r.c.bot_clicks).label("bot_clicks"),
            func.sum(r.c.invalid_clicks).label("invalid_clicks"),
        )
        .where(*_where(r, start, end, scope))
        .group_by(*cols)
    )
    return list(conn.execute(stmt))


def conversion_groups(
    conn: Connection,
    dims: Sequence[str],
    start: datetime,
    end: datetime,
    scope: Scope,
    with_hour: bool,
    statuses: Sequence[str] | None,
    day_offset: int | None = None,
) -> list[Any]:
    """Sum conversion counters per program, currency (and hour or day) and the dimensions."""
    r = t.conversion_rollups
    cols = [*_columns(conn, r, dims, with_hour, day_offset), r.c.currency]
    # Orders no affiliate earned are kept for reconciliation, not counted as performance.
    conds = [*_where(r, start, end, scope), r.c.affiliate_id != 0]
    if statuses is not None:
        conds.append(r.c.status.in_(list(statuses)))
    stmt = (
        select(
            *cols,
            func.sum(r.c.conversions).label("conversions"),
            func.sum(r.c.amount_minor).label("amount_minor"),
            func.sum(r.c.commission_minor).label("commission_minor"),
        )
        .where(*conds)
        .group_by(*cols)
    )
    return list(conn.execute(stmt))


def names(conn: Connection, table: Any, ids: set[int]) -> dict[int, str]:
    """Return id -> name for the given ids of a table with a ``name`` column."""
    if not ids:
        return {}
    rows = conn.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
    return {row.id: row.name for row in rows}


def program_currencies(conn: Connection) -> dict[int, str]:
    """Return program id -> currency."""
    rows = conn.execute(select(t.programs.c.id, t.programs.c.currency))
    return {row.id: row.currency for row in rows}
