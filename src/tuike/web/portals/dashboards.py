"""Performance figures the dashboards and report pages share: totals, daily series, offers."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from tuike.domain.catalog import Program
from tuike.domain.errors import InvalidField
from tuike.services import reports
from tuike.storage.reports import Scope


def parse_range(params: dict[str, str | None], default_tz: str) -> reports.ReportQuery:
    """Read from/to/tz from a page's query, falling back to the last 30 days."""
    try:
        q = reports.parse_query(
            start=params.get("from") or None,
            end=params.get("to") or None,
            group_by="day",
            tz=params.get("tz") or None,
            default_tz=default_tz,
        )
    except InvalidField:
        q = reports.parse_query(
            start=None, end=None, group_by="day", tz=None, default_tz=default_tz
        )
    if not params.get("from"):
        q = reports.ReportQuery(q.end - timedelta(days=29), q.end, q.group_by, q.tz)
    return q


def performance(
    conn: Connection, q: reports.ReportQuery, scope: Scope, *, merchant_view: bool
) -> dict[str, Any]:
    """Return the totals of a range and one point per day for the charts."""
    return performance_of(reports.run_report(conn, q, scope, merchant_view=merchant_view), q)


def performance_of(rows: list[dict[str, Any]], q: reports.ReportQuery) -> dict[str, Any]:
    """Return totals and daily series from report rows grouped by day (and maybe more)."""
    days = [(q.start + timedelta(days=i)).isoformat() for i in range((q.end - q.start).days + 1)]
    clicks: dict[str, int] = defaultdict(int)
    conversions: dict[str, int] = defaultdict(int)
    money: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    total_clicks = total_conversions = 0
    for row in rows:
        clicks[row["day"]] += row["clicks"]
        conversions[row["day"]] += row["conversions"]
        total_clicks += row["clicks"]
        total_conversions += row["conversions"]
        if row["currency"]:
            money[row["day"]][row["currency"]] += Decimal(row["commission"])
            totals[row["currency"]]["amount"] += Decimal(row["amount"])
            totals[row["currency"]]["commission"] += Decimal(row["commission"])
    by_currency = []
    for currency, t in sorted(totals.items()):
        commission, amount = t["commission"], t["amount"]
        by_currency.append(
            {
                "currency": currency,
                "amount": amount,
                "commission": commission,
                "epc": (commission / total_clicks).quantize(Decimal("0.0001"))
                if total_clicks
                else None,
                "roi": ((amount - commission) / commission).quantize(Decimal("0.01"))
                if commission
                else None,
            }
        )
    main_currency = by_currency[0]["currency"] if by_currency else ""
    return {
        "clicks": total_clicks,
        "conversions": total_conversions,
        "conversion_rate": (Decimal(total_conversions) / total_clicks).quantize(Decimal("0.0001"))
        if total_clicks
        else None,
        "by_currency": by_currency,
        "series": {
            "x": days,
            "clicks": [clicks[d] for d in days],
            "conversions": [conversions[d] for d in days],
            "commission": [str(money[d].get(main_currency, Decimal(0))) for d in days],
            "currency": main_currency,
        },
    }


def chart(series: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Return the ECharts spec of a performance series, with translated series names."""
    return {
        "x": series["x"],
        "series": [
            {"name": labels["clicks"], "data": series["clicks"], "type": "bar"},
            {"name": labels["conversions"], "data": series["conversions"], "axis": 1},
            {"name": labels["commission"], "data": series["commission"], "axis": 1},
        ],
    }


def models_of(program: Program) -> list[str]:
    """Return how a program pays: CPS for a share of sales, CPL for leads, CPA for actions."""
    base = program.plan.base
    out = []
    if base.cps_percent is not None or base.category_percent:
        out.append("CPS")
    for event in base.fixed:
        kind = "CPL" if event == "lead" else "CPA"
        if kind not in out:
            out.append(kind)
    return out


def commission_text(program: Program) -> str:
    """Return a short statement of a program's base rates (8% · lead 5.00)."""
    base = program.plan.base
    parts = []
    if base.cps_percent is not None:
        parts.append(f"{base.cps_percent.normalize():f}%")
    for event, amount in base.fixed.items():
        parts.append(f"{event} {amount} {program.currency}")
    return " · ".join(parts) or "–"


def by_affiliate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold report rows grouped by (day, affiliate) into one row per affiliate and currency."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["affiliate"], row["currency"])
        acc = out.setdefault(
            key,
            {
                "affiliate": row["affiliate"],
                "affiliate_name": row.get("affiliate_name", ""),
                "currency": row["currency"],
                "clicks": 0,
                "conversions": 0,
                "amount": Decimal(0),
                "commission": Decimal(0),
            },
        )
        acc["clicks"] += row["clicks"]
        acc["conversions"] += row["conversions"]
        acc["amount"] += Decimal(row["amount"])
        acc["commission"] += Decimal(row["commission"])
    for acc in out.values():
        commission = acc["commission"]
        acc["roi"] = (
            ((acc["amount"] - commission) / commission).quantize(Decimal("0.01"))
            if commission
            else None
        )
    return list(out.values())


OFFER_STATS_TTL = 300.0  # seconds: the marketplace's network figures may be this stale


def cached(cache: dict[str, tuple[float, Any]], key: str, ttl: float, compute: Any) -> Any:
    """Return ``compute()``, reusing a value computed less than ``ttl`` seconds ago."""
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = compute()
    cache[key] = (now + ttl, value)
    return value


def offer_stats(conn: Connection, q: reports.ReportQuery) -> dict[int, dict[str, Any]]:
    """Return the network's EPC and conversion rate per program over a range."""
    grouped = reports.ReportQuery(q.start, q.end, ("program",), q.tz)
    out: dict[int, dict[str, Any]] = {}
    for row in reports.run_report(conn, grouped, Scope(), merchant_view=False):
        stats = out.setdefault(row["program"], {"clicks": 0, "conversions": 0, "commission": 0})
        stats["clicks"] += row["clicks"]
        stats["conversions"] += row["conversions"]
        stats["commission"] += Decimal(row["commission"])
    for stats in out.values():
        clicks = stats["clicks"]
        stats["epc"] = (
            (stats["commission"] / clicks).quantize(Decimal("0.0001")) if clicks else None
        )
        stats["cr"] = (
            (Decimal(stats["conversions"]) / clicks).quantize(Decimal("0.0001")) if clicks else None
        )
    return out
