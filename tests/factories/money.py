"""Conversions and books for the money tests: a click, a report, the ledger check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from factories.world import World
from tuike.domain.fraud.conversion import Thresholds
from tuike.domain.tracking import ClickParams
from tuike.services import ledger
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click, record_clicks
from tuike.services.conversion_requests import parse_request
from tuike.services.conversions import record_conversion
from tuike.services.screening import ScreenSettings

# Clicks and reports come within milliseconds here: the rule ctit_too_short is off.
NO_CTIT = ScreenSettings(Thresholds(*(timedelta(0),) * 3))


def a_click(db: Any, w: World, link: Any = None, at: datetime | None = None) -> str:
    """Store one click on the world's link (or ``link``), at ``at``; return its id."""
    resolved = Resolved(link=link or w.link, program=w.program, membership_ok=True)
    record = build_click(
        resolved,
        ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id=""),
        Visit("10.0.0.1", "UA", "", "CN", None),
        at=at or datetime.now(UTC),
        ip_storage="truncated",
        privacy_salt="s",
        uniques=UniqueFilter(window=timedelta(hours=1), max_entries=1000),
    )
    with db.write() as conn:
        record_clicks(conn, [record])
    return record.id


def send(db: Any, w: World, *, at: datetime | None = None, **data: Any) -> Any:
    """Record a conversion report through the service, as the API does (at ``at``)."""
    now = at or datetime.now(UTC)
    with db.write() as conn:
        req = parse_request(data, w.program, now=now, max_future=timedelta(hours=1))
        return record_conversion(
            conn, w.program, req, source="api", privacy_salt="s", now=now, checks=NO_CTIT
        )


def assert_books_hold(db: Any) -> ledger.CheckReport:
    with db.read() as conn:
        report = ledger.check(conn)
    assert report.ok, report
    return report
