"""Reports over the API (spec section 6), JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from tuike.domain.access import AFFILIATE
from tuike.domain.errors import InvalidField
from tuike.services import reports as svc
from tuike.web.api.v1.deps import PrincipalDep, StateDep, report_scope

router = APIRouter(tags=["reports"])


def _cell(value: Any) -> Any:
    """Return a CSV cell that a spreadsheet will not run as a formula (sub ids are free text)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        if value.lstrip("-").replace(".", "", 1).isdigit():
            return value  # a negative figure such as roi "-0.35"
        return "'" + value
    return value


@router.get("/reports", responses={200: {"content": {"text/csv": {}}}})
def report(
    who: PrincipalDep,
    state: StateDep,
    from_: str | None = Query(None, alias="from", description="First day, e.g. 2026-11-01"),
    to: str | None = Query(None, description="Last day (inclusive), e.g. 2026-11-30"),
    group_by: str = Query("day", description="Comma list of: " + ", ".join(svc.GROUP_KEYS)),
    tz: str | None = Query(None, description="IANA time zone for days and hours"),
    format: str = Query("json", description="json | csv"),
) -> Response:
    """Return clicks, conversions, GMV, commission, EPC … grouped as asked."""
    if format not in ("json", "csv"):
        raise InvalidField("format", "must be json or csv")
    query = svc.parse_query(
        start=from_,
        end=to,
        group_by=group_by,
        tz=tz,
        default_tz=state.settings.default_timezone,
    )
    merchant_view = who.role != AFFILIATE
    with state.db.read() as conn:
        rows = svc.run_report(conn, query, report_scope(conn, who), merchant_view=merchant_view)
    if format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=svc.csv_columns(query.group_by, merchant_view), extrasaction="ignore"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="tuike-report.csv"'},
        )
    body: dict[str, Any] = {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "tz": query.tz,
        "group_by": list(query.group_by),
        "rows": rows,
    }
    return JSONResponse(body)
