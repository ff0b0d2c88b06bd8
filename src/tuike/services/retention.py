"""Retention: delete the data kept only for security and fraud checks once no check can
read it any more.

- ``identity_marks`` not seen for ``TUIKE_FRAUD_SELF_REFERRAL_DAYS``: the rule
  self_referral ignores them already (``identity.matching``);
- ``login_attempts`` older than the rate limits' window (``TUIKE_LOGIN_WINDOW_MINUTES``,
  read by the sign-in, sign-up and abuse-report limits) and a day's margin;
- finished ``postback_deliveries`` (delivered, failed, refused) older than
  ``TUIKE_POSTBACK_LOG_DAYS``; pending ones are never touched;
- the reporter's email and hashed address of ``abuse_reports`` filed more than
  ``TUIKE_ABUSE_REPORTER_DAYS`` ago; the report itself stays for the quality score.

Each purge walks its table in primary-key order, at most ``batch`` rows a transaction:
the ids are read first (no write lock), then changed in a short write transaction that
checks the condition again, so a row touched in between (a mark seen again) stays, and
no purge holds a lock for long on either database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, or_, select, update

from tuike.domain import postbacks as P
from tuike.services.clock import utcnow
from tuike.storage import tables as t
from tuike.storage.db import Database

if TYPE_CHECKING:
    from tuike.config import Settings

BATCH = 5_000
# Login attempts are kept this long past the longest window that counts them, so that
# a window lengthened at a restart still finds its attempts.
LOGIN_MARGIN = timedelta(days=1)
FINISHED = (P.DELIVERED, P.FAILED, P.REFUSED)


@dataclass(frozen=True, slots=True)
class Windows:
    """How long each kind of security data is kept; None keeps it for ever."""

    identity_marks: timedelta | None
    login_attempts: timedelta
    postback_log: timedelta | None
    abuse_reporter: timedelta | None


def windows(settings: Settings) -> Windows:
    """Return the retention windows of these settings."""

    def days(n: int) -> timedelta | None:
        return timedelta(days=n) if n > 0 else None

    return Windows(
        # 0 turns the rule off; the marks stay for when it is turned on again.
        identity_marks=days(settings.fraud_self_referral_days),
        login_attempts=timedelta(minutes=settings.login_window_minutes) + LOGIN_MARGIN,
        postback_log=days(settings.postback_log_days),
        abuse_reporter=days(settings.abuse_reporter_days),
    )


@dataclass(frozen=True, slots=True)
class Purge:
    """The rows one purge deleted (or, dry, would delete) or cleared, per table."""

    identity_marks: int
    login_attempts: int
    postback_deliveries: int
    abuse_reports: int  # reports whose reporter was cleared; the reports stay
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Return the rows changed in all tables."""
        marks, attempts = self.identity_marks, self.login_attempts
        return marks + attempts + self.postback_deliveries + self.abuse_reports


def purge_identity_marks(
    db: Database,
    older_than: timedelta | None,
    *,
    now: datetime,
    batch: int = BATCH,
    dry_run: bool = False,
) -> int:
    """Delete the identity marks not seen within ``older_than``; return how many."""
    if older_than is None:
        return 0
    m = t.identity_marks.c
    return _delete(db, t.identity_marks, m.last_seen < now - older_than, batch, dry_run)


def purge_login_attempts(
    db: Database,
    older_than: timedelta,
    *,
    now: datetime,
    batch: int = BATCH,
    dry_run: bool = False,
) -> int:
    """Delete the login (and sign-up, abuse-report) attempts older than ``older_than``."""
    a = t.login_attempts.c
    return _delete(db, t.login_attempts, a.at < now - older_than, batch, dry_run)


def purge_postback_log(
    db: Database,
    older_than: timedelta | None,
    *,
    now: datetime,
    batch: int = BATCH,
    dry_run: bool = False,
) -> int:
    """Delete the finished postback deliveries older than ``older_than``; never pending ones."""
    if older_than is None:
        return 0
    d = t.postback_deliveries.c
    # A finished delivery's next_attempt_at is when it finished (workers/postbacks.py
    # `outcome`, and the test and too-long ones at creation); the index
    # ix_postback_deliveries_due (status, next_attempt_at) finds them.
    old = and_(d.status.in_(FINISHED), d.next_attempt_at < now - older_than)
    return _delete(db, t.postback_deliveries, old, batch, dry_run)


def clear_abuse_reporters(
    db: Database,
    older_than: timedelta | None,
    *,
    now: datetime,
    batch: int = BATCH,
    dry_run: bool = False,
) -> int:
    """Clear the reporter's email and hashed address of reports filed before ``older_than``.

    Return how many reports were cleared; the reports themselves stay.
    """
    if older_than is None:
        return 0
    r = t.abuse_reports.c
    old = and_(
        r.created_at < now - older_than,
        or_(r.reporter_email != "", r.reporter_ip_hash != ""),
    )

    def clear(conn: Connection, in_range: ColumnElement[bool]) -> int:
        return conn.execute(
            update(t.abuse_reports)
            .where(in_range, old)
            .values(reporter_email="", reporter_ip_hash="")
        ).rowcount

    return _in_batches(db, t.abuse_reports, old, batch, dry_run, clear)


def purge(
    db: Database,
    keep: Windows,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
    dry_run: bool = False,
) -> Purge:
    """Purge every table of security data past its window; return the counts."""
    now = now or utcnow()
    kw = {"now": now, "batch": batch, "dry_run": dry_run}
    return Purge(
        identity_marks=purge_identity_marks(db, keep.identity_marks, **kw),
        login_attempts=purge_login_attempts(db, keep.login_attempts, **kw),
        postback_deliveries=purge_postback_log(db, keep.postback_log, **kw),
        abuse_reports=clear_abuse_reporters(db, keep.abuse_reporter, **kw),
        dry_run=dry_run,
    )


def _delete(
    db: Database, table: Table, condition: ColumnElement[bool], batch: int, dry_run: bool
) -> int:
    def remove(conn: Connection, in_range: ColumnElement[bool]) -> int:
        return conn.execute(delete(table).where(in_range, condition)).rowcount

    return _in_batches(db, table, condition, batch, dry_run, remove)


def _in_batches(
    db: Database,
    table: Table,
    condition: ColumnElement[bool],
    batch: int,
    dry_run: bool,
    change: Callable[[Connection, ColumnElement[bool]], int],
) -> int:
    """Apply ``change`` to the rows meeting ``condition``, ``batch`` ids a transaction."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    pk = table.c.id
    if dry_run:
        with db.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
            )
    total = 0
    after: int | None = None
    while True:
        query = select(pk).where(condition).order_by(pk).limit(batch)
        if after is not None:
            query = query.where(pk > after)
        with db.read() as conn:
            ids = list(conn.execute(query).scalars())
        if not ids:
            return total
        # An id range rather than a list of 5,000 bound values; the condition is checked
        # again, so the range changes no row that stopped meeting it meanwhile.
        in_range = pk.between(ids[0], ids[-1])
        with db.write() as conn:
            total += change(conn, in_range)
        if len(ids) < batch:
            return total
        after = ids[-1]
