"""The click writer: group commit, a 302 only after commit, bounded queue, fast mode."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from factories.http import count
from factories.world import make_world
from tuike.config import Settings
from tuike.domain.tracking import ClickParams
from tuike.services.click_writer import Backpressure, ClickWriter, _write
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click
from tuike.storage import tables
from tuike.web.app import create_app

PARAMS = ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id="")


def records(w, n: int) -> list:
    resolved = Resolved(link=w.link, program=w.program, membership_ok=True)
    uniques = UniqueFilter(window=timedelta(hours=24), max_entries=10_000)
    now = datetime.now(UTC)
    return [
        build_click(
            resolved,
            PARAMS,
            Visit(f"10.0.0.{i % 250}", "UA", "", "CN", None),
            at=now,
            ip_storage="truncated",
            privacy_salt="s",
            uniques=uniques,
        )
        for i in range(n)
    ]


def test_clicks_are_committed_in_groups_and_each_waits_for_its_group(db):
    w = make_world(db)
    gate = threading.Event()
    seen: list[int] = []

    def slow_write(database, batch):
        gate.wait(10)
        seen.append(len(batch))
        _write(database, batch)

    writer = ClickWriter(db, max_delay=0.01, max_batch=100, write=slow_write)
    writer.start()

    async def main() -> None:
        tasks = [asyncio.create_task(writer.record(r)) for r in records(w, 300)]
        await asyncio.sleep(0.1)
        # Nothing is acknowledged while its group has not committed.
        assert not any(t.done() for t in tasks)
        assert count(db, tables.clicks) == 0
        gate.set()
        await asyncio.gather(*tasks)
        assert count(db, tables.clicks) == 300

    try:
        asyncio.run(main())
    finally:
        writer.stop()
    assert sum(seen) == 300 and max(seen) <= 100 and len(seen) < 300
    with db.read() as conn:
        rolled = (
            conn.execute(
                tables.click_rollups.select().with_only_columns(tables.click_rollups.c.clicks)
            )
            .scalars()
            .all()
        )
    assert sum(rolled) == 300


def test_a_full_queue_refuses_instead_of_growing(db):
    w = make_world(db)
    gate = threading.Event()
    writer = ClickWriter(
        db, max_delay=0, max_batch=1, limit=3, write=lambda d, b: (gate.wait(10), _write(d, b))
    )
    writer.start()
    try:
        batch = records(w, 10)
        accepted = 0
        with pytest.raises(Backpressure):
            for r in batch:
                writer.submit(r)
                accepted += 1
        assert accepted <= 4  # the limit, plus the one the writer holds
    finally:
        gate.set()
        writer.stop()
    assert count(db, tables.clicks) == accepted


def test_a_database_failure_answers_503_and_stores_nothing(db, settings):
    w = make_world(db)
    app = create_app(settings, db)

    def broken(database, batch):
        raise RuntimeError("database down")

    with TestClient(app, follow_redirects=False) as client:
        state = app.state.tuike
        state.writer.stop()
        state.writer = ClickWriter(db, write=broken)
        state.writer.start()
        r = client.get(f"/c/{w.link.code}")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "tk_click" not in r.headers.get("set-cookie", "")
    assert count(db, tables.clicks) == 0


def test_fast_mode_answers_at_once_and_writes_on_shutdown(db):
    w = make_world(db)
    settings = Settings(
        env="test",
        database_url=db.url,
        approve_interval_seconds=0,
        tracker_mode="fast",
        writer_max_delay_ms=50,
    )
    with TestClient(create_app(settings, db), follow_redirects=False) as client:
        for _ in range(5):
            assert client.get(f"/c/{w.link.code}").status_code == 302
    # Leaving the client ran the shutdown, which writes what is queued.
    assert count(db, tables.clicks) == 5
