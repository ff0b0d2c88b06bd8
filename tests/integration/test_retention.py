"""Retention: the security data past its window goes, in bounded batches; the rest stays.

Identity marks, login attempts, the postback delivery log and abuse reporters' contact
details (services/retention.py), through the service, the rules that read them and
`tuike purge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from factories.http import click, post, row_of, sale
from factories.portal import login, make_user
from factories.world import World, make_world
from tuike.domain import postbacks as P
from tuike.domain.privacy import ip_hash
from tuike.services import abuse, auth, identity, retention
from tuike.services import postbacks as svc
from tuike.services.clock import utcnow
from tuike.storage import postbacks as store
from tuike.storage import tables as t
from tuike.storage.db import Database
from tuike.web.app import create_app
from tuike.workers import retention as job

BIN = Path(sys.executable).parent / "tuike"
IP = "203.0.113.9"
UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0"
DAY = timedelta(days=1)


@pytest.fixture
def world(db: Database) -> World:
    return make_world(db)


def count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def mark(db: Database, owner_id: int, value: str, seen: datetime, owner_type: str = "affiliate"):
    with db.write() as conn:
        identity.record(conn, owner_type, owner_id, [identity.Mark("ip", value)], now=seen)


def attempt(db: Database, at: datetime, email: str = "a@example.com", ok: bool = False) -> None:
    with db.write() as conn:
        conn.execute(t.login_attempts.insert().values(email=email, ip=IP, ok=ok, at=at))


def delivery(db: Database, w: World, key: str, status: str, at: datetime) -> int:
    """Log a delivery created and (unless pending) finished at ``at``."""
    values = svc.delivery_values(
        w.affiliate_id, "https://pb.example/x", at, event_key=key, conversion_id=None
    )
    values["status"] = status
    if status == P.DELIVERED:
        values["delivered_at"] = at
    with db.write() as conn:
        return store.add_delivery(conn, values)


def report(db: Database, w: World, filed: datetime, email: str = "r@example.com") -> int:
    with db.write() as conn:
        made = abuse.file_report(
            conn,
            link=w.link.code,
            kind="group_spam",
            description="spammed into a WeChat group",
            reporter_email=email,
            reporter_ip=IP,
            salt="salt",
        )
        conn.execute(
            t.abuse_reports.update().where(t.abuse_reports.c.id == made.id).values(created_at=filed)
        )
    return made.id


@contextmanager
def statements(db: Database, verb: str) -> Iterator[list[int]]:
    """Collect the row count of every ``verb`` (DELETE, UPDATE) statement run meanwhile."""
    counts: list[int] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(verb):
            counts.append(cursor.rowcount)

    event.listen(db.engine, "after_cursor_execute", seen)
    try:
        yield counts
    finally:
        event.remove(db.engine, "after_cursor_execute", seen)


# --- identity marks ------------------------------------------------------------------


def test_marks_not_seen_within_the_self_referral_window_go(db, world):
    now = utcnow()
    keep = timedelta(days=180)
    mark(db, world.affiliate_id, "h:old", now - keep - DAY)
    mark(db, world.affiliate_id, "h:edge", now - keep + timedelta(minutes=1))
    mark(db, world.affiliate_id, "h:fresh", now)
    mark(db, 7, "h:old-user", now - 400 * DAY, owner_type="user")
    # Seen long ago and again lately: its last_seen counts, not its first_seen.
    mark(db, world.affiliate_id, "h:back", now - 400 * DAY)
    mark(db, world.affiliate_id, "h:back", now - DAY)

    assert retention.purge_identity_marks(db, keep, now=now, dry_run=True) == 2
    assert count(db, t.identity_marks) == 5
    assert retention.purge_identity_marks(db, keep, now=now) == 2
    m = t.identity_marks.c
    with db.read() as conn:
        left = set(conn.execute(select(m.value_hash)).scalars())
    assert left == {"h:edge", "h:fresh", "h:back"}
    assert retention.purge_identity_marks(db, keep, now=now) == 0
    assert retention.purge_identity_marks(db, None, now=now + 1000 * DAY) == 0  # rule off


def test_a_fresh_mark_still_makes_self_referral_after_a_purge(db, client, settings, world):
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    app = create_app(settings, db)
    with TestClient(
        app, client=(IP, 40000), headers={"User-Agent": UA}, follow_redirects=False
    ) as browser:
        assert login(browser, email).status_code == 303
    old_ip = "198.51.100.7"
    long_ago = utcnow() - timedelta(days=settings.fraud_self_referral_days + 1)
    mark(db, world.affiliate_id, ip_hash(old_ip, settings.privacy_salt), long_ago)

    done = retention.purge(db, retention.windows(settings))
    assert done.identity_marks == 1
    assert count(db, t.identity_marks) == 4  # address and browser, of the account and user

    r = post(client, world, sale("SELF", click_id=click(client, world.link.code), ip=IP))
    assert (r.json()["held"], r.json()["fraud_score"]) == (True, 80)
    assert [x["rule"] for x in row_of(db, "SELF").fraud_reasons] == ["self_referral"]
    r = post(client, world, sale("OLD", click_id=click(client, world.link.code), ip=old_ip))
    assert r.json()["fraud_score"] == 0


# --- login attempts ------------------------------------------------------------------


def test_login_attempts_past_the_window_and_a_days_margin_go(db, settings):
    now = utcnow()
    keep = retention.windows(settings).login_attempts
    assert keep == timedelta(minutes=settings.login_window_minutes) + DAY
    attempt(db, now - 2 * DAY)
    attempt(db, now - 30 * DAY, email="api:signup", ok=True)
    attempt(db, now - DAY)  # within the margin: stays
    for _ in range(5):
        attempt(db, now - timedelta(minutes=1))

    assert retention.purge_login_attempts(db, keep, now=now) == 2
    assert count(db, t.login_attempts) == 6
    # The rate limit still counts the recent failures.
    limits = auth.LoginLimits(window=timedelta(minutes=15), per_email=5, per_ip=30)
    with db.write() as conn:
        result = auth.login(conn, "a@example.com", "whatever1", ip=IP, limits=limits)
    assert result.refused == "throttled"


# --- postback log --------------------------------------------------------------------


def test_finished_postbacks_past_the_log_window_go_and_pending_ones_never(db, world):
    now = utcnow()
    old = now - 31 * DAY
    gone = [
        delivery(db, world, "old-delivered", P.DELIVERED, old),
        delivery(db, world, "old-failed", P.FAILED, old),
        delivery(db, world, "old-refused", P.REFUSED, old),
    ]
    kept = [
        delivery(db, world, "old-pending", P.PENDING, old),
        delivery(db, world, "new-delivered", P.DELIVERED, now - 29 * DAY),
        delivery(db, world, "new-failed", P.FAILED, now),
    ]
    keep = timedelta(days=30)
    assert retention.purge_postback_log(db, keep, now=now, dry_run=True) == 3
    assert retention.purge_postback_log(db, keep, now=now) == 3
    with db.read() as conn:
        left = set(conn.execute(select(t.postback_deliveries.c.id)).scalars())
    assert left == set(kept) and not left & set(gone)
    # Ever so old, a pending delivery stays for the postback job.
    assert retention.purge_postback_log(db, keep, now=now + 1000 * DAY) == 2
    with db.read() as conn:
        pending = store.get_delivery(conn, kept[0])
    assert pending is not None and pending.status == P.PENDING
    assert retention.purge_postback_log(db, None, now=now + 1000 * DAY) == 0  # 0 keeps all


# --- abuse reports -------------------------------------------------------------------


def test_old_abuse_reports_lose_their_reporter_but_stay(db, world):
    now = utcnow()
    old = report(db, world, now - 91 * DAY)
    anonymous = report(db, world, now - 91 * DAY, email="")
    fresh = report(db, world, now - 89 * DAY)
    with db.write() as conn:
        abuse.resolve(conn, old, "upheld", reason="seen in the group", actor="op")

    keep = timedelta(days=90)
    # The anonymous one still has the hashed address: cleared too.
    assert retention.clear_abuse_reporters(db, keep, now=now, dry_run=True) == 2
    assert retention.clear_abuse_reporters(db, keep, now=now) == 2
    assert retention.clear_abuse_reporters(db, keep, now=now) == 0
    r = t.abuse_reports.c
    with db.read() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                select(r.id, r.status, r.description, r.reporter_email, r.reporter_ip_hash)
            )
        }
    assert set(rows) == {old, anonymous, fresh}
    assert (rows[old].reporter_email, rows[old].reporter_ip_hash) == ("", "")
    assert (rows[old].status, rows[old].description) == ("upheld", "spammed into a WeChat group")
    assert rows[anonymous].reporter_ip_hash == ""
    assert rows[fresh].reporter_email == "r@example.com" and rows[fresh].reporter_ip_hash
    with db.read() as conn:
        assert abuse.reports_against(conn, world.affiliate_id, now - 100 * DAY)["upheld"] == 1


# --- batches -------------------------------------------------------------------------


def test_purges_work_in_batches_of_at_most_the_batch_size(db, world):
    now = utcnow()
    with db.write() as conn:
        for i in range(23):
            # Interleaved: every fourth row is fresh and must survive its batch's range.
            at = now if i % 4 == 0 else now - 400 * DAY
            identity.record(
                conn, "affiliate", world.affiliate_id, [identity.Mark("ip", f"h:{i}")], now=at
            )
            conn.execute(t.login_attempts.insert().values(email="x", ip=IP, ok=False, at=at))
    old = 23 - 6
    with statements(db, "DELETE") as deleted:
        assert retention.purge_identity_marks(db, 180 * DAY, now=now, batch=5) == old
    assert deleted == [5, 5, 5, 2]
    assert count(db, t.identity_marks) == 6
    with statements(db, "DELETE") as deleted:
        assert retention.purge_login_attempts(db, 2 * DAY, now=now, batch=5) == old
    assert deleted == [5, 5, 5, 2]
    assert count(db, t.login_attempts) == 6

    for i in range(7):
        report(db, world, now - 100 * DAY, email=f"r{i}@example.com")
    with statements(db, "UPDATE") as updated:
        assert retention.clear_abuse_reporters(db, 90 * DAY, now=now, batch=3) == 7
    assert updated == [3, 3, 1]
    for i in range(4):
        delivery(db, world, f"k{i}", P.DELIVERED, now - 40 * DAY)
    with statements(db, "DELETE") as deleted:
        # Exactly two batches' worth: the last, empty read ends it without a write.
        assert retention.purge_postback_log(db, 30 * DAY, now=now, batch=2) == 4
    assert deleted == [2, 2]
    with pytest.raises(ValueError):
        retention.purge_login_attempts(db, DAY, now=now, batch=0)


def test_purge_counts_every_table_and_a_dry_run_changes_nothing(db, settings, world):
    now = utcnow()
    mark(db, world.affiliate_id, "h:old", now - 200 * DAY)
    attempt(db, now - 3 * DAY)
    delivery(db, world, "old", P.FAILED, now - 40 * DAY)
    report(db, world, now - 100 * DAY)
    keep = retention.windows(settings)

    dry = retention.purge(db, keep, now=now, dry_run=True)
    assert dry == retention.Purge(1, 1, 1, 1, dry_run=True)
    assert (
        count(db, t.identity_marks),
        count(db, t.login_attempts),
        count(db, t.postback_deliveries),
        count(db, t.abuse_reports, t.abuse_reports.c.reporter_email != ""),
    ) == (1, 1, 1, 1)
    done = retention.purge(db, keep, now=now)
    assert done == retention.Purge(1, 1, 1, 1) and done.total == 4
    assert retention.purge(db, keep, now=now).total == 0


def test_the_serve_job_purges_every_interval(db, settings, world):
    attempt(db, utcnow() - 3 * DAY)

    async def until_purged() -> int:
        task = asyncio.create_task(job.run_periodically(db, settings, 0.05))
        try:
            for _ in range(200):
                await asyncio.sleep(0.05)
                if count(db, t.login_attempts) == 0:
                    return 0
            return count(db, t.login_attempts)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert asyncio.run(until_purged()) == 0


# --- tuike purge ---------------------------------------------------------------------


def run(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TUIKE_DATABASE_URL": db.url, **env}
    environ.pop("TUIKE_ENV", None)
    return subprocess.run(
        [str(BIN), *args], env=environ, capture_output=True, text=True, timeout=120, check=False
    )


def test_tuike_purge_prints_the_counts_and_dry_run_changes_nothing(db, world):
    now = utcnow()
    for i in range(3):
        mark(db, world.affiliate_id, f"h:old{i}", now - 200 * DAY)
    mark(db, world.affiliate_id, "h:fresh", now)
    attempt(db, now - 3 * DAY)
    attempt(db, now - 3 * DAY)
    delivery(db, world, "old", P.DELIVERED, now - 40 * DAY)
    delivery(db, world, "pending", P.PENDING, now - 40 * DAY)
    report(db, world, now - 100 * DAY)
    before = [count(db, table) for table in (t.identity_marks, t.login_attempts)]

    dry = run(db, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines == [
        "identity_marks       would delete 3 (not seen for 180 days)",
        "login_attempts       would delete 2 (older than 1 day 15 min)",
        "postback_deliveries  would delete 1 (finished more than 30 days ago)",
        "abuse_reports        would clear the reporter of 1 (filed more than 90 days ago)",
    ]
    assert [count(db, table) for table in (t.identity_marks, t.login_attempts)] == before
    assert count(db, t.postback_deliveries) == 2
    assert count(db, t.abuse_reports, t.abuse_reports.c.reporter_email != "") == 1

    done = run(db, "purge", TUIKE_POSTBACK_LOG_DAYS="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "identity_marks       deleted 3 (not seen for 180 days)",
        "login_attempts       deleted 2 (older than 1 day 15 min)",
        "postback_deliveries  deleted 0 (kept: TUIKE_POSTBACK_LOG_DAYS is 0)",
        "abuse_reports        cleared the reporter of 1 (filed more than 90 days ago)",
    ]
    assert (count(db, t.identity_marks), count(db, t.login_attempts)) == (1, 0)
    assert count(db, t.postback_deliveries) == 2
    assert count(db, t.abuse_reports, t.abuse_reports.c.reporter_email != "") == 0
    assert count(db, t.abuse_reports) == 1
