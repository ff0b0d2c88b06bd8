"""Reports: performance per day, program, affiliate, sub id … from the rollups.

Rollups are hourly in UTC; days and hours are shown in the requested time zone. A
time zone whose offset is not a whole number of hours sees each hour bucket in the
local day where it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from tuike.domain.errors import InvalidField
from tuike.domain.money import from_minor
from tuike.services.catalog import check_timezone
from tuike.storage import reports as q
from tuike.storage import tables as t

GROUP_KEYS = ("day", "hour", *q.DIMENSION_COLUMNS)
VALID_STATUSES = ("pending", "approved")
MAX_DAYS = 400
METRICS = (
    "impressions",
    "clicks",
    "unique_clicks",
    "conversions",
    "conversion_rate",
    "amount",
    "commission",
    "epc",
)
MERCHANT_METRICS = ("cost", "roi")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """A validated report request."""

    start: date
    end: date
    group_by: tuple[str, ...]
    tz: str


def _within_range(day: date, field: str) -> date:
    # Beyond these the local day boundaries overflow the datetime range.
    if not date(2000, 1, 1) <= day <= date(9999, 12, 30):
        raise InvalidField(field, "must lie between 2000-01-01 and 9999-12-30")
    return day


def parse_query(
    *,
    start: str | None,
    end: str | None,
    group_by: str | None,
    tz: str | None,
    default_tz: str,
) -> ReportQuery:
    """Validate report parameters (raises InvalidField)."""
    tz = tz or default_tz
    check_timezone(tz, "tz")
    today = datetime.now(ZoneInfo(tz)).date()
    try:
        end_d = _within_range(date.fromisoformat(end) if end else today, "to")
    except ValueError:
        raise InvalidField("to", "must be a date like 2026-11-30") from None
    try:
        start_d = _within_range(
            date.fromisoformat(start) if start else end_d - timedelta(days=6), "from"
        )
    except ValueError:
        raise InvalidField("from", "must be a date like 2026-11-01") from None
    if start_d > end_d:
        raise InvalidField("from", "must not be after 'to'")
    if (end_d - start_d).days >= MAX_DAYS:
        raise InvalidField("from", f"a report spans at most {MAX_DAYS} days")
    keys = tuple(k.strip() for k in (group_by or "day").split(",") if k.strip())
    for key in keys:
        if key not in GROUP_KEYS:
            raise InvalidField("group_by", f"unknown key {key!r}; allowed: {', '.join(GROUP_KEYS)}")
    if len(set(keys)) != len(keys):
        raise InvalidField("group_by", "a key is repeated")
    return ReportQuery(start=start_d, end=end_d, group_by=keys, tz=tz)


def _ratio(num: Decimal, den: Decimal, places: str) -> str | None:
    if den == 0:
        return None
    return str((num / den).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def offset_spans(
    start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, int]]:
    """Split [start, end) into stretches of constant UTC offset, at hour precision."""
    spans: list[tuple[datetime, datetime, int]] = []
    at = start.astimezone(UTC)
    stop = end.astimezone(UTC)
    span_start, offset = at, _offset(at, zone)
    while at < stop:
        here = _offset(at, zone)
        if here != offset:
            spans.append((span_start, at, offset))
            span_start, offset = at, here
        at += timedelta(hours=1)
    spans.append((span_start, stop, offset))
    return spans


def _offset(at: datetime, zone: ZoneInfo) -> int:
    delta = at.astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def run_report(
    conn: Connection, query: ReportQuery, scope: q.Scope, *, merchant_view: bool
) -> list[dict[str, Any]]:
    """Return report rows: the group keys, then the metrics, sorted by the keys."""
    zone = ZoneInfo(query.tz)
    start = datetime.combine(query.start, time.min, zone)
    end = datetime.combine(query.end + timedelta(days=1), time.min, zone)
    with_hour = "hour" in query.group_by
    # Days are bucketed in SQL, one query per stretch of constant UTC offset (DST).
    spans = (
        offset_spans(start, end, zone)
        if "day" in query.group_by and not with_hour
        else [(start, end, None)]
    )
    dims = [k for k in query.group_by if k not in ("day", "hour")]
    statuses = None if "status" in query.group_by else VALID_STATUSES
    currencies = q.program_currencies(conn)

    def key_of(row: Any, currency: str) -> tuple:
        values: list[Any] = []
        for k in query.group_by:
            if k == "day":
                day = row.hour.astimezone(zone).date() if with_hour else row.day
                values.append(day if isinstance(day, str) else day.isoformat())
            elif k == "hour":
                values.append(row.hour.astimezone(zone).strftime("%Y-%m-%d %H:00"))
            else:
                col = q.DIMENSION_COLUMNS[k]
                values.append(getattr(row, col, ""))
        return (*values, currency)

    acc: dict[tuple, dict[str, int]] = {}

    def slot(key: tuple) -> dict[str, int]:
        return acc.setdefault(
            key,
            dict.fromkeys(
                (
                    "impressions",
                    "clicks",
                    "unique_clicks",
                    "bot_clicks",
                    "invalid_clicks",
                    "conversions",
                    "amount_minor",
                    "commission_minor",
                ),
                0,
            ),
        )

    click_rows = [
        row
        for a, b, offset in spans
        for row in q.click_groups(conn, dims, a, b, scope, with_hour, offset)
    ]
    conversion_rows = [
        row
        for a, b, offset in spans
        for row in q.conversion_groups(conn, dims, a, b, scope, with_hour, statuses, offset)
    ]
    for row in click_rows:
        s = slot(key_of(row, currencies.get(row.program_id, "")))
        for name in ("impressions", "clicks", "unique_clicks", "bot_clicks", "invalid_clicks"):
            s[name] += int(getattr(row, name) or 0)
    for row in conversion_rows:
        s = slot(key_of(row, row.currency))
        for name in ("conversions", "amount_minor", "commission_minor"):
            s[name] += int(getattr(row, name) or 0)

    program_names = affiliate_names = {}
    if "program" in query.group_by:
        i = query.group_by.index("program")
        program_names = q.names(conn, t.programs, {k[i] for k in acc})
    if "affiliate" in query.group_by:
        i = query.group_by.index("affiliate")
        affiliate_names = q.names(conn, t.affiliates, {k[i] for k in acc if k[i]})

    out = []
    for key in sorted(acc, key=lambda k: tuple((v is None, str(v)) for v in k)):
        s = acc[key]
        currency = key[-1]
        row: dict[str, Any] = dict(zip(query.group_by, key[:-1], strict=True))
        if "program" in row:
            row["program_name"] = program_names.get(row["program"], "")
        if "affiliate" in row:
            row["affiliate_name"] = affiliate_names.get(row["affiliate"], "")
        clicks = Decimal(s["clicks"])
        amount = from_minor(s["amount_minor"], currency) if currency else Decimal(0)
        commission = from_minor(s["commission_minor"], currency) if currency else Decimal(0)
        row.update(
            {
                "currency": currency,
                "impressions": s["impressions"],
                "clicks": s["clicks"],
                "unique_clicks": s["unique_clicks"],
                "bot_clicks": s["bot_clicks"],
                "invalid_clicks": s["invalid_clicks"],
                "conversions": s["conversions"],
                "conversion_rate": _ratio(Decimal(s["conversions"]), clicks, "0.0001"),
                "amount": str(amount),
                "commission": str(commission),
                "epc": _ratio(commission, clicks, "0.0001"),
            }
        )
        if merchant_view:
            row["cost"] = str(commission)
            row["roi"] = _ratio(amount - commission, commission, "0.01")
        out.append(row)
    return out


def csv_columns(group_by: Sequence[str], merchant_view: bool) -> list[str]:
    """Return the CSV header for a report."""
    cols: list[str] = []
    for k in group_by:
        cols.append(k)
        if k in ("program", "affiliate"):
            cols.append(f"{k}_name")
    cols += [
        "currency",
        "impressions",
        "clicks",
        "unique_clicks",
        "bot_clicks",
        "invalid_clicks",
        "conversions",
        "conversion_rate",
        "amount",
        "commission",
        "epc",
    ]
    if merchant_view:
        cols += list(MERCHANT_METRICS)
    return cols
