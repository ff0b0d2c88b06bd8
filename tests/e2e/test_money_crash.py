"""A payout run or a period close SIGKILLed midway and run again pays nobody twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from factories.server import BIN
from tuike.domain import ledger as L
from tuike.services import ledger
from tuike.storage import tables

pytestmark = pytest.mark.e2e
AFFILIATES = 3000


def seed(db) -> None:
    """AFFILIATES affiliates, each owed 100.00 + its id in fen, posted in one go."""
    now = datetime(2026, 10, 5, tzinfo=UTC)
    with db.write() as conn:
        conn.execute(
            insert(tables.affiliates),
            [
                {"name": f"A{i}", "email": f"crash{i}@example.com", "timezone": "UTC",
                 "created_at": now}
                for i in range(AFFILIATES)
            ],
        )  # fmt: skip
        ids = conn.execute(select(tables.affiliates.c.id)).scalars().all()
        for aff in ids:
            owed = 10_000 + aff
            ledger.post(
                conn,
                L.Posting(
                    key=f"seed:{aff}",
                    kind="adjust",
                    currency="CNY",
                    entries=(
                        (L.Account(L.PLATFORM, 0, L.CASH, "CNY"), owed),
                        (L.Account(L.AFFILIATE, aff, L.AVAILABLE, "CNY"), -owed),
                    ),
                ),
                now=now,
            )


def kill_midway(args: list[str], env: dict[str, str], delay: float = 0.8) -> str:
    """Run the command and SIGKILL it after ``delay`` (its imports take ~0.6 s)."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    if proc.poll() is not None:
        return f"finished within {delay}s"  # the rerun must then change nothing
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"SIGKILLed after {delay}s"


def test_a_killed_payout_run_and_settlement_rerun_pay_nobody_twice(db, tmp_path):
    seed(db)
    env = {**os.environ, "TUIKE_DATABASE_URL": db.url, "TUIKE_DEFAULT_TIMEZONE": "UTC"}
    tuike = str(BIN / "tuike")

    first = kill_midway([tuike, "payouts", "create", "--currency", "CNY"], env)
    again = subprocess.run(
        [tuike, "payouts", "create", "--currency", "CNY"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    with db.read() as conn:
        items = conn.execute(
            select(tables.payout_items.c.affiliate_id, tables.payout_items.c.amount_minor)
        ).all()
        batches = conn.execute(select(func.count()).select_from(tables.payout_batches)).scalar()
        report = ledger.check(conn)
    per_affiliate = Counter(a for a, _ in items)
    assert len(per_affiliate) == AFFILIATES and set(per_affiliate.values()) == {1}
    assert all(amount == 10_000 + aff for aff, amount in items)
    assert report.ok, report

    settle = [tuike, "settle", "--period", "2026-10"]
    second = kill_midway(settle, env, delay=0.7)
    done = subprocess.run(settle, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with db.read() as conn:
        statements = Counter(
            conn.execute(
                select(tables.statements.c.owner_id).where(
                    tables.statements.c.owner_type == "affiliate"
                )
            ).scalars()
        )
    assert len(statements) == AFFILIATES and set(statements.values()) == {1}
    print(
        f"\npayouts create {first}; rerun: {batches} batch, {len(items)} items, every "
        f"affiliate paid once. settle {second}; rerun: {sum(statements.values())} "
        f"statements, one per affiliate. Books balanced."
    )
