"""The review queue: conversions held for review, with their evidence; release or reject.

A conversion waits for review when it is pending with ``needs_review``: the fraud rules
held it (its score reached the program's ``hold_score``), or it came from the pixel of a
program whose pixel conversions start pending review. Releasing it clears the flag and
it follows the normal lifecycle (approved after the lock period, or by the merchant);
rejecting it releases its reservation. Both are audit-logged; the conversion's own
compare-and-set makes each happen once, so concurrent reviewers cannot pay it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from tuike.domain import ids
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.lifecycle import PENDING
from tuike.domain.money import from_minor
from tuike.services import audit, conversion_queries, conversions
from tuike.services.clock import utcnow
from tuike.storage import tables as t

_c = t.conversions.c
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class HeldConversion:
    """A conversion in the queue, with what the reviewer needs to decide."""

    id: str
    program_id: int
    program_name: str
    affiliate_id: int | None
    affiliate_name: str
    event: str
    order_id: str
    source: str
    attribution: str
    coupon: str | None
    currency: str
    amount: Decimal
    commission: Decimal
    occurred_at: datetime
    recorded_at: datetime
    clicked_at: datetime | None
    fraud_score: int
    reasons: tuple[dict[str, Any], ...]

    @property
    def seconds_after_click(self) -> float | None:
        """Return how long after its click the conversion occurred, if it had one."""
        if self.clicked_at is None:
            return None
        return (self.occurred_at - self.clicked_at).total_seconds()


def held_conversions(
    conn: Connection,
    *,
    program_ids: Sequence[int] | None = None,
    before_id: str | None = None,
    limit: int = 100,
) -> list[HeldConversion]:
    """Return the conversions waiting for review, newest first (``program_ids``: a scope)."""
    stmt = (
        select(
            t.conversions,
            t.programs.c.name.label("program_name"),
            t.affiliates.c.name.label("affiliate_name"),
            t.clicks.c.clicked_at.label("clicked_at"),
        )
        .join(t.programs, t.programs.c.id == _c.program_id)
        .outerjoin(t.affiliates, t.affiliates.c.id == _c.affiliate_id)
        .outerjoin(t.clicks, t.clicks.c.id == _c.click_id)
        .where(_c.status == PENDING, _c.needs_review.is_(True))
        .order_by(_c.id.desc())
        .limit(limit)
    )
    if program_ids is not None:
        stmt = stmt.where(_c.program_id.in_(list(program_ids)))
    if before_id and ids.is_ulid(before_id):
        stmt = stmt.where(_c.id < before_id)
    return [
        HeldConversion(
            id=r.id,
            program_id=r.program_id,
            program_name=r.program_name,
            affiliate_id=r.affiliate_id,
            affiliate_name=r.affiliate_name or "",
            event=r.event,
            order_id=r.order_id,
            source=r.source,
            attribution=r.attribution,
            coupon=r.coupon,
            currency=r.currency,
            amount=from_minor(r.amount_minor, r.currency),
            commission=from_minor(r.commission_minor, r.currency),
            occurred_at=r.occurred_at,
            recorded_at=r.created_at,
            clicked_at=r.clicked_at,
            fraud_score=r.fraud_score or 0,
            reasons=tuple(r.fraud_reasons or ()),
        )
        for r in conn.execute(stmt)
    ]


def _reason(reason: str, *, required: bool) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON or any(ord(ch) < 32 for ch in reason):
        raise InvalidField("reason", f"must be at most {MAX_REASON} printable characters")
    if required and not reason:
        raise InvalidField("reason", "is required to reject a conversion")
    return reason


def _held(conn: Connection, conversion_id: str, program_ids: Sequence[int] | None) -> Any:
    row = conversion_queries.get_conversion(conn, conversion_id, lock=True)
    if row is None or (program_ids is not None and row.program_id not in program_ids):
        raise NotFound("conversion")
    if row.status != PENDING or not row.needs_review:
        raise Conflict(f"the conversion is {row.status} and not waiting for review")
    return row


def release(
    conn: Connection,
    conversion_id: str,
    *,
    actor: str,
    reason: str = "",
    program_ids: Sequence[int] | None = None,
) -> Any:
    """Release a held conversion into the normal lifecycle (audit-logged).

    ``program_ids`` limits it to a merchant's programs (None: any, for the operator).
    It is approved by the lock-period job once its lock period (counted from when it was
    recorded) has passed, or at once by the merchant.
    """
    reason = _reason(reason, required=False)
    row = _held(conn, conversion_id, program_ids)
    now = utcnow()
    moved = conn.execute(
        update(t.conversions)
        .where(_c.id == row.id, _c.status == PENDING, _c.needs_review.is_(True))
        .values(needs_review=False, updated_at=now)
    ).rowcount
    if moved != 1:  # another reviewer was first
        raise Conflict("the conversion changed meanwhile; reload the queue")
    audit.record(
        conn,
        actor,
        "conversion.release",
        f"conversion:{row.id}",
        reason=reason,
        program_id=row.program_id,
        fraud_score=row.fraud_score or 0,
        rules=[r.get("rule") for r in row.fraud_reasons or ()],
    )
    return row


def reject(
    conn: Connection,
    conversion_id: str,
    *,
    actor: str,
    by: str,
    reason: str,
    program_ids: Sequence[int] | None = None,
) -> Any:
    """Reject a held conversion with a reason: its reservation is released (audit-logged).

    ``by`` (merchant, operator) goes to the conversion's event log with the reason.
    """
    reason = _reason(reason, required=True)
    row = _held(conn, conversion_id, program_ids)
    moved = conversions.review_conversion(conn, row.id, "rejected", reason=reason, by=by)
    audit.record(
        conn,
        actor,
        "conversion.reject",
        f"conversion:{row.id}",
        reason=reason,
        program_id=row.program_id,
        fraud_score=row.fraud_score or 0,
        rules=[r.get("rule") for r in row.fraud_reasons or ()],
    )
    return moved
