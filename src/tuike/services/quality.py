"""The affiliate quality job: read every affiliate's book, score it, write the scores.

A few aggregated queries over the window (click rollups, conversions joined to their
clicks by key, abuse reports), never a row of traffic into Python; the rules are pure
(``domain.fraud.quality``). The scores and their reasons (the rules that fired, with
their evidence) are written in one short transaction. A job, not a person's decision:
nothing is audit-logged, flagged affiliates are logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    func,
    null,
    select,
    update,
)

from tuike.domain.fraud.quality import (
    Book,
    Quality,
    QualitySettings,
    Reports,
    assess,
    reasons_of,
)
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.storage.db import Database

log = logging.getLogger("tuike.quality")

DAY = 86_400
HOUR = 3_600


@dataclass(frozen=True, slots=True)
class QualityRun:
    """What one run found: every affiliate's quality, and the window it looked at."""

    since: datetime
    until: datetime
    qualities: dict[int, Quality]

    @property
    def flagged(self) -> list[Quality]:
        """The flagged affiliates, lowest score first."""
        return sorted(
            (q for q in self.qualities.values() if q.flagged),
            key=lambda q: (q.score, q.affiliate_id),
        )


def _seconds_between(conn: Connection, later: Any, earlier: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":
        # SQLite keeps times as naive UTC text (storage.types.UTCDateTime).
        return (func.julianday(later) - func.julianday(earlier)) * DAY
    return func.extract("epoch", later - earlier)


def _click_counts(conn: Connection, since: datetime, until: datetime) -> dict[tuple, list[int]]:
    r = t.click_rollups.c
    rows = conn.execute(
        select(
            r.program_id,
            r.affiliate_id,
            func.sum(r.clicks),
            func.sum(r.invalid_clicks),
            func.sum(r.bot_clicks),
        )
        .where(r.hour >= since, r.hour < until)
        .group_by(r.program_id, r.affiliate_id)
    )
    # Filtered clicks apart from declared bots: crawlers follow every link of a page,
    # whoever put it there, so they say nothing of the affiliate (filtered bots are in
    # invalid_clicks, and bot_clicks counts them, filtered or not).
    return {(p, a): [int(c or 0), max(int(i or 0) - int(b or 0), 0)] for p, a, c, i, b in rows}


def _conversion_counts(conn: Connection, since: datetime, until: datetime) -> dict[tuple, list]:
    c, k = t.conversions.c, t.clicks.c
    ctit = _seconds_between(conn, c.occurred_at, k.clicked_at)

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    rows = conn.execute(
        select(
            c.program_id,
            c.affiliate_id,
            func.count(func.distinct(k.id)),
            func.count(k.id),
            count(and_(k.id.is_not(None), ctit > DAY)),
            count(and_(k.id.is_not(None), ctit < HOUR)),
            count(c.amount_minor > 0),
            count(and_(c.amount_minor > 0, c.refunded_minor > 0)),
        )
        .select_from(t.conversions.outerjoin(t.clicks, k.id == c.click_id))
        .where(c.occurred_at >= since, c.occurred_at < until, c.affiliate_id.is_not(None))
        .group_by(c.program_id, c.affiliate_id)
    )
    return {(row[0], row[1]): [int(v or 0) for v in row[2:]] for row in rows}


def load_books(conn: Connection, since: datetime, until: datetime) -> list[Book]:
    """Return every affiliate's book per program over [since, until)."""
    clicks = _click_counts(conn, since, until)
    conversions = _conversion_counts(conn, since, until)
    books = []
    for program_id, affiliate_id in sorted(set(clicks) | set(conversions)):
        billable, invalid = clicks.get((program_id, affiliate_id), [0, 0])
        converting, with_click, late, early, sales, refunds = conversions.get(
            (program_id, affiliate_id), [0] * 6
        )
        books.append(
            Book(
                affiliate_id=affiliate_id,
                program_id=program_id,
                clicks=billable,
                invalid_clicks=invalid,
                converting_clicks=converting,
                with_click=with_click,
                late=late,
                early=early,
                sales=sales,
                refunds=refunds,
            )
        )
    return books


def load_reports(conn: Connection, since: datetime, until: datetime) -> dict[int, Reports]:
    """Return the upheld and open abuse reports per affiliate created in the window."""
    a = t.abuse_reports.c
    counts: dict[int, Counter[str]] = {}
    rows = conn.execute(
        select(a.affiliate_id, a.status, func.count())
        .where(
            a.affiliate_id.is_not(None),
            a.status.in_(("upheld", "open")),
            a.created_at >= since,
            a.created_at < until,
        )
        .group_by(a.affiliate_id, a.status)
    )
    for affiliate_id, status, n in rows:
        counts.setdefault(affiliate_id, Counter())[status] += int(n)
    return {aid: Reports(upheld=c["upheld"], open=c["open"]) for aid, c in counts.items()}


def assess_affiliates(
    conn: Connection, settings: QualitySettings, *, since: datetime, until: datetime
) -> QualityRun:
    """Read the books of the window and score every affiliate that has one."""
    programs = repo.list_programs(conn)
    qualities = assess(
        load_books(conn, since, until),
        load_reports(conn, since, until),
        settings,
        disabled={p.id: p.fraud.disabled for p in programs},
        program_names={p.id: p.name for p in programs},
    )
    return QualityRun(since=since, until=until, qualities=qualities)


def write_scores(conn: Connection, qualities: Mapping[int, Quality], now: datetime) -> int:
    """Store the scores and their reasons: every affiliate clean (100, no reasons) first,
    then the others in one executemany; in the caller's transaction, so never seen half done.

    Returns how many affiliates were written with a score below 100.
    """
    a = t.affiliates.c
    conn.execute(
        update(t.affiliates).values(
            quality_score=100,
            quality_flagged=False,
            quality_reasons=null(),  # SQL NULL, not the JSON null a bare None would store
            quality_updated_at=now,
        )
    )
    rows = [
        {"aid": q.affiliate_id, "score": q.score, "flagged": q.flagged, "reasons": reasons_of(q)}
        for q in sorted(qualities.values(), key=lambda q: q.affiliate_id)
        if q.score < 100 or q.flagged or q.signals
    ]
    if rows:
        conn.execute(
            update(t.affiliates)
            .where(a.id == bindparam("aid"))
            .values(
                quality_score=bindparam("score"),
                quality_flagged=bindparam("flagged"),
                quality_reasons=bindparam("reasons", type_=a.quality_reasons.type),
                quality_updated_at=now,
            ),
            rows,
        )
    return sum(1 for q in qualities.values() if q.score < 100)


def run_quality(
    db: Database, settings: QualitySettings, *, window_days: int, now: datetime | None = None
) -> QualityRun:
    """Score every affiliate over the last ``window_days`` and store the scores."""
    now = now or utcnow()
    since = now - timedelta(days=window_days)
    with db.read() as conn:
        result = assess_affiliates(conn, settings, since=since, until=now)
    with db.write() as conn:
        write_scores(conn, result.qualities, now)
    for q in result.flagged:
        log.info(
            "affiliate %d flagged, quality %d: %s",
            q.affiliate_id,
            q.score,
            "; ".join(f"{s.code}: {s.evidence}" for s in q.signals),
        )
    return result
