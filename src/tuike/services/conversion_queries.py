"""Reading conversions: one by id, the API's lists and the portals' searches.

Every function takes the caller's scope (programs, affiliate) as filters; the web layer
decides the scope from who is asking.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from tuike.domain.lifecycle import PENDING
from tuike.domain.money import from_minor
from tuike.services import ledger
from tuike.storage import tables as t

_c = t.conversions.c
_BY_ID = select(t.conversions).where(_c.id == bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()


def conversion_body(row: Any, *, duplicate: bool = False) -> dict[str, Any]:
    """Return the public JSON form of a conversion row (``duplicate``: a repeat report)."""
    body = {
        "conversion_id": row.id,
        "status": row.status,
        "attributed": row.affiliate_id is not None,
        "affiliate_id": row.affiliate_id,
        "commission": str(from_minor(row.commission_minor, row.currency)),
        "currency": row.currency,
        "amount": str(from_minor(row.amount_minor, row.currency)),
        "refunded_amount": str(from_minor(row.refunded_minor, row.currency)),
        "event": row.event,
        "order_id": row.order_id,
        "attribution": row.attribution,
        # Traffic quality (docs/fraud-rules.md): held = waiting for a review.
        "fraud_score": getattr(row, "fraud_score", 0) or 0,
        "held": bool(getattr(row, "needs_review", False)) and row.status == PENDING,
    }
    if getattr(row, "fee_rate_ppm", 0):
        # The platform's service fee on this commission, its own line (docs/money.md).
        fee = ledger.split_of(row).fee
        body["service_fee"] = str(from_minor(fee, row.currency))
        body["fee_mode"] = row.fee_mode
    original = getattr(row, "original_currency", None)
    if original:
        # Reported in another currency: what was reported and the rate it was converted at.
        body["reported"] = {
            "currency": original,
            "amount": str(from_minor(row.original_amount_minor, original)),
            "fx_rate": row.fx_rate,
        }
    if duplicate:
        body["duplicate"] = True
    return body


def get_conversion(conn: Connection, conversion_id: str, *, lock: bool = False) -> Any:
    """Return a conversion row by id (``lock``: locked for update on PostgreSQL)."""
    stmt = _BY_ID_LOCKED if lock and conn.dialect.name == "postgresql" else _BY_ID
    return conn.execute(stmt, {"id": conversion_id}).first()


def list_conversions(
    conn: Connection,
    *,
    program_ids: Sequence[int] | None = None,
    affiliate_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Return recent conversions visible to a caller, newest first."""
    stmt = select(t.conversions).order_by(t.conversions.c.id.desc()).limit(limit)
    if program_ids is not None:
        stmt = stmt.where(t.conversions.c.program_id.in_(list(program_ids)))
    if affiliate_id is not None:
        stmt = stmt.where(t.conversions.c.affiliate_id == affiliate_id)
    if status is not None:
        stmt = stmt.where(t.conversions.c.status == status)
    return [conversion_body(r) for r in conn.execute(stmt)]


_LIST_COLUMNS = (
    "id",
    "program_id",
    "affiliate_id",
    "event",
    "order_id",
    "status",
    "source",
    "currency",
    "amount_minor",
    "commission_minor",
    "occurred_at",
    "attribution",
)


def search_conversions(
    conn: Connection,
    *,
    program_ids: Sequence[int] | None = None,
    affiliate_id: int | None = None,
    status: str | None = None,
    order_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Return conversions for the portals' lists, newest first, with decimal amounts;
    ``before_id`` pages on (the ids older than the last one shown)."""
    stmt = select(*(_c[name] for name in _LIST_COLUMNS)).order_by(_c.id.desc()).limit(limit)
    if before_id:
        stmt = stmt.where(_c.id < before_id)
    if program_ids is not None:
        stmt = stmt.where(_c.program_id.in_(list(program_ids)))
    if affiliate_id is not None:
        stmt = stmt.where(_c.affiliate_id == affiliate_id)
    if status:
        stmt = stmt.where(_c.status == status)
    if order_id:
        stmt = stmt.where(_c.order_id == order_id.strip())
    if since is not None:
        stmt = stmt.where(_c.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(_c.occurred_at < until)
    return [
        {
            "id": r.id,
            "program_id": r.program_id,
            "affiliate_id": r.affiliate_id,
            "event": r.event,
            "order_id": r.order_id,
            "status": r.status,
            "source": r.source,
            "currency": r.currency,
            "amount": from_minor(r.amount_minor, r.currency),
            "commission": from_minor(r.commission_minor, r.currency),
            "occurred_at": r.occurred_at,
            "attribution": r.attribution,
        }
        for r in conn.execute(stmt)
    ]
