"""The job that recomputes the affiliates' quality scores (services/quality.py)."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from tuike.config import Settings
from tuike.services.quality import QualityRun, run_quality
from tuike.storage.db import Database

log = logging.getLogger("tuike.workers.quality")


def score_affiliates(db: Database, settings: Settings) -> QualityRun:
    """Score every affiliate over the settings' window, now, and store the scores."""
    return run_quality(
        db, settings.quality_settings(), window_days=settings.fraud_quality_window_days
    )


async def run_periodically(db: Database, settings: Settings, interval: float) -> None:
    """Run score_affiliates every ``interval`` seconds, the first one interval after start.

    The scores change slowly and a server that restarts often need not rescan its books
    at every start; `tuike fraud quality` runs the job at once.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            run = await run_in_threadpool(score_affiliates, db, settings)
            log.info(
                "quality scores: %d affiliates assessed, %d flagged",
                len(run.qualities),
                len(run.flagged),
            )
        except Exception:
            log.exception("quality job failed; retrying next round")
