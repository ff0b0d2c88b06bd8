"""The demo world: what a newcomer sees after `tuike demo`, at a small scale."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tuike.config import Settings
from tuike.services.demo import DemoError, load_demo
from tuike.services.keys import authenticate
from tuike.services.users import verify_login
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.storage.db import Database
from tuike.storage.migrate import upgrade

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture
def demo_db(tmp_path: Path) -> Iterator[Database]:
    """Return an empty, migrated SQLite file database."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _row_counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in t.metadata.sorted_tables
        }


def test_demo_world_holds_its_invariants_and_loads_only_once(demo_db: Database) -> None:
    settings = Settings(env="test", database_url=demo_db.url)
    stages: set[str] = set()

    summary = load_demo(
        demo_db,
        settings,
        seed=7,
        now=NOW,
        scale=0.02,
        progress=lambda stage, done, total: stages.add(stage),
    )

    counts = _row_counts(demo_db)
    assert (summary.merchants, summary.programs) == (3, 6)
    assert (counts["merchants"], counts["programs"]) == (3, 6)
    assert summary.affiliates == counts["affiliates"] >= 6
    assert summary.links == counts["links"] > 0
    assert summary.clicks == counts["clicks"] == 6000
    assert {"catalog", "clicks", "conversions"} <= stages
    with demo_db.read() as conn:
        rollup_total = conn.execute(
            select(func.sum(t.click_rollups.c.clicks + t.click_rollups.c.bot_clicks))
        ).scalar_one()
        unique = conn.execute(select(func.sum(t.click_rollups.c.unique_clicks))).scalar_one()
        conversions = conn.execute(select(t.conversions)).all()
        programs = repo.list_programs(conn)
        # Every key and login handed out works.
        assert all(authenticate(conn, key) is not None for _, key in summary.keys)
        role, email, password = summary.logins[0]
        principal = verify_login(conn, email, password)
        assert principal is not None and principal.role == role == "operator"
    # Reports read rollups: they must add up to the raw clicks, repeats and bots included.
    assert rollup_total == counts["clicks"]
    assert unique == summary.unique_clicks < summary.clicks
    assert 0 < summary.bot_clicks < summary.clicks * 0.05

    assert len(conversions) == summary.conversions == counts["conversions"]
    attributed = [c for c in conversions if c.affiliate_id is not None]
    assert attributed and summary.attributed == len(attributed)
    assert {c.attribution for c in attributed} >= {"click_id", "coupon"}
    assert any(c.refunded_minor > 0 for c in conversions)
    assert {c.status for c in conversions} >= {"pending", "approved"}
    cps_only = {
        p.id
        for p in programs
        if not p.plan.base.fixed and not any(g.fixed for g in p.plan.groups.values())
    }
    assert cps_only, "the shops' programs pay a percent only"
    for c in conversions:
        assert 0 <= c.commission_minor <= c.original_commission_minor
        if c.program_id in cps_only:
            assert c.commission_minor <= c.amount_minor, c.order_id

    with pytest.raises(DemoError):
        load_demo(demo_db, settings, seed=7, now=NOW, scale=0.02)
    assert _row_counts(demo_db) == counts
