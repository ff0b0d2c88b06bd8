"""Queries of the affiliate directory: the network's active affiliates, where they work,
and their valid clicks and commission per program from the rollups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from tuike.domain.ranking import Earnings
from tuike.storage import tables as t

# Commission that counts, as in the reports (services.reports.VALID_STATUSES).
COUNTED_STATUSES = ("pending", "approved")


def load_earnings(conn: Connection, since: datetime, until: datetime) -> list[Earnings]:
    """Return every affiliate's valid clicks and commission per program over [since, until)."""
    c, v = t.click_rollups.c, t.conversion_rollups.c
    clicks = {
        (p, a): int(n or 0)
        for p, a, n in conn.execute(
            select(c.program_id, c.affiliate_id, func.sum(c.clicks))
            .where(c.hour >= since, c.hour < until)
            .group_by(c.program_id, c.affiliate_id)
        )
    }
    commission = {
        (p, a): int(n or 0)
        for p, a, n in conn.execute(
            select(v.program_id, v.affiliate_id, func.sum(v.commission_minor))
            .where(v.hour >= since, v.hour < until, v.status.in_(COUNTED_STATUSES))
            .group_by(v.program_id, v.affiliate_id)
        )
    }
    return [
        Earnings(
            affiliate_id=a,
            program_id=p,
            clicks=clicks.get((p, a), 0),
            commission_minor=commission.get((p, a), 0),
        )
        for p, a in sorted(set(clicks) | set(commission))
        if a  # 0 stands for "no affiliate" in the rollups
    ]


def categories_by_affiliate(conn: Connection) -> dict[int, list[str]]:
    """Return affiliate id -> the categories of the programs it is approved in, sorted."""
    m, p = t.memberships.c, t.programs.c
    rows = conn.execute(
        select(m.affiliate_id, p.category)
        .select_from(t.memberships.join(t.programs, p.id == m.program_id))
        .where(m.status == "approved", p.category != "")
        .distinct()
    )
    out: dict[int, list[str]] = {}
    for affiliate_id, category in rows:
        out.setdefault(affiliate_id, []).append(category)
    return {a: sorted(cats) for a, cats in out.items()}


def program_categories(conn: Connection) -> list[str]:
    """Return the categories of the network's active programs, sorted."""
    p = t.programs.c
    rows = conn.execute(select(p.category).where(p.status == "active", p.category != "").distinct())
    return sorted(r[0] for r in rows)
