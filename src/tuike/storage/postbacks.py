"""Postback URL templates and the delivery queue: reads and writes of their two tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from tuike.domain.postbacks import PENDING, Delivery, PostbackUrl
from tuike.storage import tables as t
from tuike.storage.db import insert_ignore

_u = t.postback_urls.c
_d = t.postback_deliveries.c
# Built once: it runs with every change of an attributed conversion. The unique index
# (affiliate_id, program_id) answers it; the program's own template wins over program 0.
_TEMPLATE = (
    select(_u.url_template)
    .where(_u.affiliate_id == bindparam("affiliate_id"), _u.program_id.in_([bindparam("p"), 0]))
    .order_by(_u.program_id.desc())
    .limit(1)
)


def url_from_row(row: Any) -> PostbackUrl:
    """Return the domain form of a postback_urls row."""
    return PostbackUrl(
        affiliate_id=row.affiliate_id,
        program_id=row.program_id,
        url_template=row.url_template,
        updated_at=row.updated_at,
    )


def delivery_from_row(row: Any) -> Delivery:
    """Return the domain form of a postback_deliveries row."""
    return Delivery(
        id=row.id,
        affiliate_id=row.affiliate_id,
        conversion_id=row.conversion_id,
        url=row.url,
        status=row.status,
        is_test=bool(row.is_test),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_code=row.last_code,
        last_error=row.last_error or "",
        response_snippet=row.response_snippet or "",
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def template_for(conn: Connection, affiliate_id: int, program_id: int) -> str | None:
    """Return the template that applies to a program: its own, else the account default."""
    return conn.execute(_TEMPLATE, {"affiliate_id": affiliate_id, "p": program_id}).scalar()


def get_url(conn: Connection, affiliate_id: int, program_id: int) -> PostbackUrl | None:
    """Return one of an affiliate's templates (program_id 0: the account default)."""
    row = conn.execute(
        select(t.postback_urls).where(_u.affiliate_id == affiliate_id, _u.program_id == program_id)
    ).first()
    return url_from_row(row) if row else None


def list_urls(conn: Connection, affiliate_id: int) -> list[PostbackUrl]:
    """Return an affiliate's templates, the account default first."""
    rows = conn.execute(
        select(t.postback_urls).where(_u.affiliate_id == affiliate_id).order_by(_u.program_id)
    )
    return [url_from_row(r) for r in rows]


def save_url(
    conn: Connection, affiliate_id: int, program_id: int, template: str, now: datetime
) -> None:
    """Set an affiliate's template for a program (0: the account default)."""
    where = (_u.affiliate_id == affiliate_id, _u.program_id == program_id)
    values = {"url_template": template, "updated_at": now}
    if conn.execute(update(t.postback_urls).where(*where).values(**values)).rowcount:
        return
    row = {"affiliate_id": affiliate_id, "program_id": program_id, "created_at": now, **values}
    if not insert_ignore(conn, t.postback_urls, row, ("affiliate_id", "program_id")):
        # A concurrent save inserted it first: this later one wins.
        conn.execute(update(t.postback_urls).where(*where).values(**values))


def delete_url(conn: Connection, affiliate_id: int, program_id: int) -> bool:
    """Remove one of an affiliate's templates; tell whether there was one."""
    return bool(
        conn.execute(
            delete(t.postback_urls).where(
                _u.affiliate_id == affiliate_id, _u.program_id == program_id
            )
        ).rowcount
    )


def enqueue(conn: Connection, values: dict[str, Any]) -> bool:
    """Queue a delivery unless one with its event_key exists; tell whether it was added."""
    return bool(insert_ignore(conn, t.postback_deliveries, values, ("event_key",)))


def add_delivery(conn: Connection, values: dict[str, Any]) -> int:
    """Store a delivery (a test postback, already sent); return its id."""
    return int(conn.execute(insert(t.postback_deliveries).values(**values)).inserted_primary_key[0])


def get_delivery(conn: Connection, delivery_id: int) -> Delivery | None:
    """Return a delivery by id."""
    row = conn.execute(select(t.postback_deliveries).where(_d.id == delivery_id)).first()
    return delivery_from_row(row) if row else None


def list_deliveries(conn: Connection, affiliate_id: int, limit: int = 50) -> list[Delivery]:
    """Return an affiliate's latest deliveries, newest first."""
    rows = conn.execute(
        select(t.postback_deliveries)
        .where(_d.affiliate_id == affiliate_id)
        .order_by(_d.id.desc())
        .limit(limit)
    )
    return [delivery_from_row(r) for r in rows]


def tests_since(conn: Connection, affiliate_id: int, since: datetime) -> int:
    """Count the test postbacks an affiliate sent since a time."""
    return int(
        conn.execute(
            select(func.count()).where(
                _d.affiliate_id == affiliate_id, _d.is_test.is_(True), _d.created_at >= since
            )
        ).scalar_one()
    )


def has_due(conn: Connection, now: datetime) -> bool:
    """Tell whether a pending delivery is due (an index lookup)."""
    return (
        conn.execute(
            select(_d.id).where(_d.status == PENDING, _d.next_attempt_at <= now).limit(1)
        ).first()
        is not None
    )


def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[tuple[int, str, int]]:
    """Take due pending deliveries for one attempt; return (id, url, attempt number).

    Each taken row counts the attempt and is hidden until ``lease_until``: if the sender
    dies, the row is taken again after that. On PostgreSQL rows another sender holds are
    skipped (FOR UPDATE SKIP LOCKED); SQLite serialises writers anyway.
    """
    stmt = (
        select(_d.id, _d.url, _d.attempts)
        .where(_d.status == PENDING, _d.next_attempt_at <= now)
        .order_by(_d.next_attempt_at, _d.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    for row in rows:
        conn.execute(
            update(t.postback_deliveries)
            .where(_d.id == row.id)
            .values(attempts=row.attempts + 1, next_attempt_at=lease_until)
        )
    return [(row.id, row.url, row.attempts + 1) for row in rows]


def record_attempt(
    conn: Connection, delivery_id: int, attempt: int, values: dict[str, Any]
) -> bool:
    """Store the outcome of an attempt, unless a later attempt took the row meanwhile."""
    return bool(
        conn.execute(
            update(t.postback_deliveries)
            .where(_d.id == delivery_id, _d.attempts == attempt, _d.status == PENDING)
            .values(**values)
        ).rowcount
    )
