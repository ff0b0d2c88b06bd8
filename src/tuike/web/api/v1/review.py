"""The review queue over the API: held conversions with their evidence; release or
reject them (the operator, or a merchant for its own programs)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from tuike.domain import ids
from tuike.domain.access import MERCHANT, OPERATOR, Principal
from tuike.domain.errors import NotFound
from tuike.services import conversion_queries, review
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import PrincipalDep, StateDep
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import ConversionOut, Money, Strict

router = APIRouter(route_class=IdempotentRoute, tags=["review"])


class ReasonOut(BaseModel):
    rule: str = Field(description="The rule's code (docs/fraud-rules.md)")
    weight: int
    evidence: str


class HeldOut(BaseModel):
    conversion_id: str
    program_id: int
    program_name: str
    affiliate_id: int | None
    affiliate_name: str
    event: str
    order_id: str
    source: str = Field(description="api | postback | pixel")
    attribution: str = Field(description="click_id | cookie | coupon")
    coupon: str | None
    currency: str
    amount: Money
    commission: Money
    occurred_at: datetime
    recorded_at: datetime
    clicked_at: datetime | None
    seconds_after_click: float | None
    fraud_score: int
    reasons: list[ReasonOut]

    @classmethod
    def of(cls, h: review.HeldConversion) -> HeldOut:
        return cls(
            conversion_id=h.id,
            program_id=h.program_id,
            program_name=h.program_name,
            affiliate_id=h.affiliate_id,
            affiliate_name=h.affiliate_name,
            event=h.event,
            order_id=h.order_id,
            source=h.source,
            attribution=h.attribution,
            coupon=h.coupon,
            currency=h.currency,
            amount=str(h.amount),
            commission=str(h.commission),
            occurred_at=h.occurred_at,
            recorded_at=h.recorded_at,
            clicked_at=h.clicked_at,
            seconds_after_click=h.seconds_after_click,
            fraud_score=h.fraud_score,
            reasons=[ReasonOut(**r) for r in h.reasons],
        )


class ReviewIn(Strict):
    reason: str = Field(
        "", max_length=500, description="Why (required to reject; kept in the audit log)"
    )


def review_scope(conn: Connection, who: Principal) -> list[int] | None:
    """Return the programs whose queue a caller works (None: all, for the operator)."""
    who.require(OPERATOR, MERCHANT)
    if who.role == OPERATOR:
        return None
    return [p.id for p in repo.list_programs(conn, merchant_id=who.owner_id)]


def _conversion_id(conversion_id: str) -> str:
    if not ids.is_ulid(conversion_id):
        raise NotFound("conversion")
    return conversion_id


@router.get("/review/conversions", response_model=list[HeldOut])
def list_held(
    who: PrincipalDep,
    state: StateDep,
    program_id: int | None = Query(None, ge=1, description="Only this program's"),
    before: str | None = Query(None, description="Older than this conversion id (paging)"),
    limit: int = Query(100, ge=1, le=500),
) -> list[HeldOut]:
    """List the conversions waiting for review, newest first, with their evidence."""
    with state.db.read() as conn:
        scope = review_scope(conn, who)
        if program_id is not None:
            if scope is not None and program_id not in scope:
                raise NotFound("program")
            scope = [program_id]
        held = review.held_conversions(conn, program_ids=scope, before_id=before, limit=limit)
    return [HeldOut.of(h) for h in held]


@router.post(
    "/review/conversions/{conversion_id}/release",
    response_model=ConversionOut,
    response_model_exclude_none=True,
)
def release(
    conversion_id: str, who: PrincipalDep, state: StateDep, body: ReviewIn | None = None
) -> dict:
    """Release a held conversion into its normal lifecycle (audit-logged)."""
    with state.db.write() as conn:
        scope = review_scope(conn, who)
        row = review.release(
            conn,
            _conversion_id(conversion_id),
            actor=who.ref,
            reason=body.reason if body else "",
            program_ids=scope,
        )
        return conversion_queries.conversion_body(conversion_queries.get_conversion(conn, row.id))


@router.post(
    "/review/conversions/{conversion_id}/reject",
    response_model=ConversionOut,
    response_model_exclude_none=True,
)
def reject(conversion_id: str, body: ReviewIn, who: PrincipalDep, state: StateDep) -> dict:
    """Reject a held conversion with a reason; its reservation is released (audit-logged)."""
    with state.db.write() as conn:
        scope = review_scope(conn, who)
        review.reject(
            conn,
            _conversion_id(conversion_id),
            actor=who.ref,
            by=who.role,
            reason=body.reason,
            program_ids=scope,
        )
        return conversion_queries.conversion_body(
            conversion_queries.get_conversion(conn, conversion_id)
        )
