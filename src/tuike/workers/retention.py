"""The job that purges the security data past its retention (services/retention.py)."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from tuike.config import Settings
from tuike.services import retention
from tuike.storage.db import Database

log = logging.getLogger("tuike.workers.retention")


def purge(db: Database, settings: Settings, *, dry_run: bool = False) -> retention.Purge:
    """Purge every table of security data past the settings' windows, now."""
    return retention.purge(db, retention.windows(settings), dry_run=dry_run)


async def run_periodically(db: Database, settings: Settings, interval: float) -> None:
    """Run purge every ``interval`` seconds, the first one interval after start.

    Nothing is urgent to the minute, and a server that restarts often need not scan its
    tables at every start; `tuike purge` runs the job at once.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            done = await run_in_threadpool(purge, db, settings)
            if done.total:
                log.info(
                    "purged %d identity marks, %d login attempts, %d postback deliveries; "
                    "cleared the reporter of %d abuse reports",
                    done.identity_marks,
                    done.login_attempts,
                    done.postback_deliveries,
                    done.abuse_reports,
                )
        except Exception:
            log.exception("retention job failed; retrying next round")
