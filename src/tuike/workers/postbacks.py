"""The job that sends queued affiliate postbacks, and the test postback of the portals.

No network call happens inside a database transaction: due deliveries are claimed in one
short transaction (each attempt counted and the row hidden for a lease), sent, and each
outcome recorded in another.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from tuike.adapters import outbound
from tuike.config import Settings
from tuike.domain import postbacks as P
from tuike.services import postbacks as svc
from tuike.services.clock import utcnow
from tuike.storage import postbacks as store
from tuike.storage.db import Database

log = logging.getLogger("tuike.workers.postbacks")

BATCH = 32
SENDERS = 8
# A claimed row is hidden this long; a batch takes at most BATCH / SENDERS rounds of the
# 5 s deadline, well inside it, so a live sender's row is never taken by another.
LEASE = timedelta(minutes=5)


def outcome(answer: outbound.Answer, attempt: int, now: datetime) -> dict[str, object]:
    """Return the columns that record an attempt's answer (and what happens next)."""
    values: dict[str, object] = {
        "last_code": answer.status_code,
        "last_error": answer.error[:500] or None,
        "response_snippet": answer.snippet() or None,
    }
    if answer.ok:
        return values | {"status": P.DELIVERED, "delivered_at": now, "next_attempt_at": now}
    if answer.refused:
        return values | {"status": P.REFUSED, "next_attempt_at": now}
    if answer.status_code is not None and not values["last_error"]:
        values["last_error"] = f"answered {answer.status_code}"
    delay = P.retry_delay(attempt)
    if delay is None:
        return values | {"status": P.FAILED, "next_attempt_at": now}
    return values | {"next_attempt_at": now + timedelta(seconds=delay)}


def deliver_due(
    db: Database,
    settings: Settings,
    now: datetime | None = None,
) -> int:
    """Send every postback that is due; return how many attempts were made."""
    policy = settings.outbound_policy()
    total = 0
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="tuike-postback") as pool:
        while True:
            started = now or utcnow()
            with db.read() as conn:
                # A read first: most rounds find nothing, and on SQLite a write
                # transaction would queue behind the click writer for nothing.
                if not store.has_due(conn, started):
                    return total
            with db.write() as conn:
                claimed = store.claim_due(conn, started, started + LEASE, BATCH)
            if not claimed:
                return total
            answers = pool.map(lambda c: _send(c[1], c[2], policy), claimed)
            for (delivery_id, _url, attempt), answer in zip(claimed, answers, strict=True):
                done = now or utcnow()
                with db.write() as conn:
                    store.record_attempt(conn, delivery_id, attempt, outcome(answer, attempt, done))
            total += len(claimed)
            if len(claimed) < BATCH:
                return total


def _send(url: str, attempt: int, policy: outbound.Policy) -> outbound.Answer:
    if attempt > P.MAX_ATTEMPTS:
        # Taken again and again without an answer written down (a sender that keeps
        # dying on it): give up rather than loop for ever.
        return outbound.Answer(error=f"no answer recorded after {P.MAX_ATTEMPTS} attempts")
    return outbound.fetch(url, policy)


@dataclass(frozen=True, slots=True)
class TestResult:
    """A test postback as sent and logged, with the target's answer."""

    delivery: P.Delivery
    answer: outbound.Answer


def fire_test(
    db: Database,
    settings: Settings,
    affiliate_id: int,
    program_id: int = svc.DEFAULT,
    url_template: str | None = None,
) -> TestResult:
    """Send a sample postback now, through the same guard, and log it as a test delivery."""
    with db.read() as conn:
        test = svc.prepare_test(conn, affiliate_id, program_id, url_template)
    answer = outbound.fetch(test.url, settings.outbound_policy())
    if answer.ok:
        status = P.DELIVERED
    elif answer.refused:
        status = P.REFUSED
    else:
        status = P.FAILED
    error = answer.error or (f"answered {answer.status_code}" if not answer.ok else "")
    with db.write() as conn:
        delivery = svc.log_test(
            conn,
            test,
            status=status,
            code=answer.status_code,
            error=error,
            snippet=answer.snippet(),
            sent_at=utcnow(),
        )
    return TestResult(delivery=delivery, answer=answer)


async def run_periodically(db: Database, settings: Settings, interval: float) -> None:
    """Run deliver_due every ``interval`` seconds until cancelled."""
    while True:
        try:
            n = await run_in_threadpool(deliver_due, db, settings)
            if n:
                log.info("sent %d affiliate postbacks", n)
        except Exception:
            log.exception("postback job failed; retrying next round")
        await asyncio.sleep(interval)
