"""Benchmark the write and report paths of the services, each against a baseline.

    .venv/bin/python bench/services.py [--clicks 50000] [--pg postgresql+psycopg://…]

For each database it prints per-click cost of building a click, recording clicks with the
driver-level insert against SQLAlchemy Core's insert (the baseline, same batch size, same
process), the cost of one conversion, and a 30-day day x affiliate report bucketed in SQL
against hourly groups re-bucketed in Python (the baseline). Figures, not thresholds.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from factories.world import make_world
from tuike.domain.tracking import ClickParams
from tuike.services import conversion_requests, reports
from tuike.services import conversions as conv
from tuike.services.clicks import (
    Resolved,
    UniqueFilter,
    Visit,
    build_click,
    record_clicks,
)
from tuike.storage import tables as t
from tuike.storage.db import Database
from tuike.storage.reports import Scope

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import scratch_databases

BATCH = 5000


def _core_insert(db: Database, records: list) -> None:
    """Baseline: the same rows through SQLAlchemy Core's insert with dicts."""
    with db.write() as conn:
        conn.execute(
            insert(t.clicks),
            [
                {
                    "id": c.id,
                    "clicked_at": c.clicked_at,
                    "program_id": c.program_id,
                    "link_id": c.link_id,
                    "affiliate_id": c.affiliate_id,
                    "creative_id": c.creative_id,
                    "sub1": c.subs[0],
                    "sub2": c.subs[1],
                    "sub3": c.subs[2],
                    "sub4": c.subs[3],
                    "sub5": c.subs[4],
                    "aff_click_id": c.aff_click_id,
                    "landing_url": c.landing_url,
                    "ip": c.ip,
                    "user_agent": c.user_agent,
                    "referer": c.referer,
                    "country": c.country,
                    "device": c.device,
                    "visitor": c.visitor,
                    "is_unique": c.is_unique,
                    "is_bot": c.is_bot,
                }
                for c in records
            ],
        )


def bench(url: str, n: int) -> list[tuple[str, str, str]]:
    """Run every measurement on one database; return (what, figure, ratio) rows."""
    db = Database(url)
    w = make_world(db)
    resolved = Resolved(link=w.link, program=w.program, membership_ok=True)
    uniques = UniqueFilter(window=timedelta(hours=24), max_entries=10**6)
    params = ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id="")
    rng = random.Random(1)
    now = datetime.now(UTC)

    def make(count: int) -> list:
        out = []
        for i in range(count):
            visit = Visit(
                ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{i % 256}",
                user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile",
                referer="",
                country="CN",
                visitor_cookie=None,
            )
            at = now - timedelta(minutes=rng.randrange(30 * 24 * 60))
            out.append(
                build_click(
                    resolved,
                    params,
                    visit,
                    at=at,
                    ip_storage="truncated",
                    privacy_salt="bench",
                    uniques=uniques,
                )
            )
        return out

    started = time.perf_counter()
    records = make(n)
    build_us = (time.perf_counter() - started) / n * 1e6

    started = time.perf_counter()
    for i in range(0, n, BATCH):
        with db.write() as conn:
            record_clicks(conn, records[i : i + BATCH])
    record_us = (time.perf_counter() - started) / n * 1e6
    baseline = make(n)
    started = time.perf_counter()
    for i in range(0, n, BATCH):
        _core_insert(db, baseline[i : i + BATCH])
    core_us = (time.perf_counter() - started) / n * 1e6

    m = min(2000, n)
    started = time.perf_counter()
    with db.write() as conn:
        for i in range(m):
            req = conversion_requests.parse_request(
                {"order_id": f"B-{i}", "amount": "199.00", "click_id": records[i].id},
                w.program,
                now=now,
                max_future=timedelta(hours=1),
            )
            conv.record_conversion(conn, w.program, req, source="api", privacy_salt="b", now=now)
    conv_ms = (time.perf_counter() - started) / m * 1e3

    query = reports.parse_query(
        start=(now - timedelta(days=30)).date().isoformat(),
        end=now.date().isoformat(),
        group_by="day,affiliate",
        tz="Asia/Shanghai",
        default_tz="UTC",
    )
    hourly = reports.parse_query(
        start=query.start.isoformat(),
        end=query.end.isoformat(),
        group_by="hour,affiliate",
        tz="Asia/Shanghai",
        default_tz="UTC",
    )
    with db.read() as conn:
        started = time.perf_counter()
        reports.run_report(conn, query, Scope(), merchant_view=True)
        day_ms = (time.perf_counter() - started) * 1e3
        started = time.perf_counter()
        by_day: dict[tuple, int] = {}
        for row in reports.run_report(conn, hourly, Scope(), merchant_view=True):
            key = (row["hour"][:10], row["affiliate"])
            by_day[key] = by_day.get(key, 0) + row["clicks"]
        hour_ms = (time.perf_counter() - started) * 1e3
    db.dispose()
    return [
        ("build_click (tracker rules, per click)", f"{build_us:.1f} µs", ""),
        (
            "record_clicks incl. rollups, batches of 5,000 (per click)",
            f"{record_us:.1f} µs",
            f"{core_us / record_us:.2f}x faster than a Core insert of the same rows without "
            f"rollups ({core_us:.1f} µs)",
        ),
        ("record_conversion (per conversion)", f"{conv_ms:.2f} ms", ""),
        (
            "report day x affiliate, 30 days",
            f"{day_ms:.0f} ms",
            f"{hour_ms / day_ms:.2f}x faster than hourly + Python ({hour_ms:.0f} ms)",
        ),
    ]


def main() -> None:
    """Parse arguments, run on SQLite (and PostgreSQL if given), print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=50_000)
    parser.add_argument("--pg", help="admin URL of a PostgreSQL server to create a db in")
    args = parser.parse_args()
    print("| database | what | figure | against the baseline |\n|---|---|---|---|")
    with scratch_databases(args.pg, "tuike_bench") as targets:
        for label, url in targets:
            for what, figure, ratio in bench(url, args.clicks):
                print(f"| {label} | {what} | {figure} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
