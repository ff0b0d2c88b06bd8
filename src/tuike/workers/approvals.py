"""The job that approves pending conversions once their lock period has passed."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from tuike.services.conversions import approve_due_conversions
from tuike.storage.db import Database

log = logging.getLogger("tuike.workers.approvals")


def approve_due(db: Database) -> int:
    """Approve every due conversion, in transactions of at most 1,000; return the count."""
    total = 0
    while True:
        with db.write() as conn:
            n = approve_due_conversions(conn)
        total += n
        if n == 0:
            return total


async def run_periodically(db: Database, interval: float) -> None:
    """Run approve_due every ``interval`` seconds until cancelled."""
    while True:
        try:
            n = await run_in_threadpool(approve_due, db)
            if n:
                log.info("approved %d conversions past their lock period", n)
        except Exception:
            log.exception("approval job failed; retrying next round")
        await asyncio.sleep(interval)
