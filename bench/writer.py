"""Click writer benchmark: rows per second the writer commits into SQLite and PostgreSQL.

    .venv/bin/python bench/writer.py [--clicks 100000] [--pg postgresql+psycopg://…]

Clicks are spread over 10,000 links and a few sub ids and countries, as on a busy day, so
that a group also adds to many rollup rows. Two measurements per database:

- one group's transaction (clicks and rollups), by group size: the storage path
  (COPY + one JSON-array upsert on PostgreSQL) against the ``executemany`` path in the
  same run (the baseline);
- the whole writer fed flat out (``ClickWriter.submit`` from one thread, default group
  settings), writing in its own process (the default) and in a thread of the server.

Figures, not thresholds. Each database is a fresh one (a temp file; a new PostgreSQL
database created and dropped on the given server).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from factories.world import World, make_world
from tuike.domain.ids import new_ulid
from tuike.domain.tracking import ClickParams, ClickRecord
from tuike.services.click_writer import ClickWriter
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click, record_clicks
from tuike.storage.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import scratch_databases

LINKS = 10_000


def make_records(w: World, n: int, seed: int) -> list[ClickRecord]:
    """n clicks over LINKS link ids (one real program and affiliate), this hour."""
    resolved = Resolved(link=w.link, program=w.program, membership_ok=True)
    uniques = UniqueFilter(window=timedelta(hours=24), max_entries=10**6)
    params = ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id="")
    rng = random.Random(seed)
    template = build_click(
        resolved,
        params,
        Visit("10.1.2.3", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile", "", "CN", None),
        at=datetime.now(UTC),
        ip_storage="truncated",
        privacy_salt="bench",
        uniques=uniques,
    )
    now = datetime.now(UTC)
    return [
        dataclasses.replace(
            template,
            id=new_ulid(now),
            link_id=w.link.id * 1_000_000 + rng.randrange(LINKS),
            subs=(rng.choice(("", "wx", "qq", "weibo")), "", "", "", ""),
            country=rng.choice(("CN", "CN", "CN", "HK", "SG")),
            ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.0",
            is_unique=rng.random() < 0.7,
        )
        for _ in range(n)
    ]


def group_rate(db: Database, records: list[ClickRecord], size: int, method: str) -> float:
    """Rows/s committing ``records`` in transactions of ``size`` clicks."""
    started = time.perf_counter()
    for i in range(0, len(records), size):
        with db.write() as conn:
            record_clicks(conn, records[i : i + size], method=method)
    return len(records) / (time.perf_counter() - started)


def writer_rate(db: Database, records: list[ClickRecord], separate_process: bool) -> float:
    """Rows/s the ClickWriter commits when fed as fast as one thread can submit."""
    writer = ClickWriter(db, limit=len(records) + 1, separate_process=separate_process)
    writer.start()
    try:
        # Let the writer process start and connect before the clock runs.
        writer.submit(records[0])
        while writer.written < 1:
            time.sleep(0.01)
        started = time.perf_counter()
        for r in records[1:]:
            writer.submit(r)
        while writer.written < len(records):
            time.sleep(0.001)
        return (len(records) - 1) / (time.perf_counter() - started)
    finally:
        writer.stop()


def bench(label: str, url: str, n: int) -> list[str]:
    """Every measurement on one database, as Markdown table rows."""
    db = Database(url)
    w = make_world(db)
    rows = []
    seed = 0
    small = max(n // 10, 2000)
    for size in (100, 2000):
        best = group_rate(db, make_records(w, small, seed), size, "best")
        if db.is_sqlite:  # one path on SQLite: nothing to compare with
            rows.append(f"| {label} | one transaction per {size:,} clicks | {best:,.0f} | |")
        else:
            base = group_rate(db, make_records(w, small, seed + 1), size, "executemany")
            rows.append(
                f"| {label} | one transaction per {size:,} clicks, COPY + JSON upsert "
                f"| {best:,.0f} | {best / base:.2f}x the executemany path ({base:,.0f}) |"
            )
        seed += 2
    in_process = writer_rate(db, make_records(w, n, seed), separate_process=True)
    in_thread = writer_rate(db, make_records(w, n, seed + 1), separate_process=False)
    rows.append(
        f"| {label} | ClickWriter fed flat out, {n:,} clicks, writer process "
        f"| {in_process:,.0f} | {in_process / in_thread:.2f}x the writer thread "
        f"({in_thread:,.0f}) |"
    )
    db.dispose()
    return rows


def main() -> None:
    """Run on SQLite (and PostgreSQL if given); print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=100_000)
    parser.add_argument("--pg", help="admin URL of a PostgreSQL server to create a db in")
    args = parser.parse_args()
    print("| database | what | rows/s | against the baseline |\n|---|---|---|---|")
    with scratch_databases(args.pg, "tuike_writer") as targets:
        for label, url in targets:
            for row in bench(label, url, args.clicks):
                print(row, flush=True)


if __name__ == "__main__":
    main()
