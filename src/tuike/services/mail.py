"""Outgoing mail: queued in the outbox inside the transaction that decided to send it.

The outbox is the mail port's default (and, for now, only) delivery: the operator reads
it in the console, and a development machine needs no mail server. A delivering backend
would read the outbox after commit, so a rolled-back sign-up never sends mail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from tuike.services.clock import utcnow
from tuike.storage import tables as t

log = logging.getLogger("tuike.mail")


@dataclass(frozen=True, slots=True)
class Email:
    """A message in the outbox."""

    id: int
    to: str
    subject: str
    body: str
    created_at: datetime


def queue(conn: Connection, to: str, subject: str, body: str) -> None:
    """Queue a message for ``to`` in the outbox."""
    conn.execute(
        insert(t.email_outbox).values(to_addr=to, subject=subject, body=body, created_at=utcnow())
    )
    log.info("mail queued for %s: %s", to, subject)


def outbox(conn: Connection, *, to: str | None = None, limit: int = 100) -> Sequence[Email]:
    """Return the newest messages of the outbox, optionally for one address."""
    stmt = select(t.email_outbox).order_by(t.email_outbox.c.id.desc()).limit(limit)
    if to:
        stmt = stmt.where(t.email_outbox.c.to_addr == to.strip().lower())
    return [Email(r.id, r.to_addr, r.subject, r.body, r.created_at) for r in conn.execute(stmt)]
