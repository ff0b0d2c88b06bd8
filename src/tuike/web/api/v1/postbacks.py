"""Affiliate postbacks over the API: URL templates, a test postback and the delivery log.

The affiliate (its own id in the path) or the operator acting for it; anyone else gets 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, Field

from tuike.domain import postbacks as P
from tuike.domain.access import Principal
from tuike.domain.errors import NotFound
from tuike.services import postbacks as svc
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import MAX_ID, IdPath, PrincipalDep, StateDep
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import Strict
from tuike.workers.postbacks import fire_test

router = APIRouter(route_class=IdempotentRoute, tags=["postbacks"])
ProgramPath = Annotated[
    int, Path(ge=0, le=MAX_ID, description="A program id, or 0 for the account default")
]


class PostbackUrlIn(Strict):
    url_template: str = Field(
        max_length=P.MAX_TEMPLATE,
        description="Absolute http(s) URL with macros, e.g. "
        "https://tracker.example/pb?cid={aff_click_id}&payout={payout}&status={status}",
    )


class PostbackUrlOut(BaseModel):
    program_id: int = Field(description="0: the account default, used by every other program")
    url_template: str
    updated_at: datetime

    @classmethod
    def of(cls, u: P.PostbackUrl) -> PostbackUrlOut:
        return cls(program_id=u.program_id, url_template=u.url_template, updated_at=u.updated_at)


class TestIn(Strict):
    program_id: int = Field(0, ge=0, le=MAX_ID, description="Whose template to test; 0: default")
    url_template: str | None = Field(
        None, max_length=P.MAX_TEMPLATE, description="A template to try instead (not saved)"
    )


class DeliveryOut(BaseModel):
    id: int
    conversion_id: str | None
    url: str
    status: str = Field(description="pending | delivered | failed | refused")
    is_test: bool
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending one is tried again")
    last_code: int | None = Field(description="HTTP status of the last answer")
    last_error: str
    response_snippet: str = Field(description="The first characters of the last answer")
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: P.Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            conversion_id=d.conversion_id,
            url=d.url,
            status=d.status,
            is_test=d.is_test,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == P.PENDING else None,
            last_code=d.last_code,
            last_error=d.last_error,
            response_snippet=d.response_snippet,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


def _affiliate(who: Principal, state: StateDep, affiliate_id: int) -> None:
    """Refuse (404) a caller who may not act for this affiliate, or an unknown one."""
    if not who.may_act_as_affiliate(affiliate_id):
        raise NotFound("affiliate")
    with state.db.read() as conn:
        if repo.get_affiliate(conn, affiliate_id) is None:
            raise NotFound("affiliate")


@router.get("/affiliates/{affiliate_id}/postbacks", response_model=list[PostbackUrlOut])
def list_postback_urls(
    affiliate_id: IdPath, who: PrincipalDep, state: StateDep
) -> list[PostbackUrlOut]:
    """List an affiliate's postback URL templates, the account default (0) first."""
    _affiliate(who, state, affiliate_id)
    with state.db.read() as conn:
        return [PostbackUrlOut.of(u) for u in svc.postback_urls(conn, affiliate_id)]


@router.put("/affiliates/{affiliate_id}/postbacks/{program_id}", response_model=PostbackUrlOut)
def put_postback_url(
    affiliate_id: IdPath,
    program_id: ProgramPath,
    body: PostbackUrlIn,
    who: PrincipalDep,
    state: StateDep,
) -> PostbackUrlOut:
    """Set the account default (program 0) or an approved program's postback URL template."""
    _affiliate(who, state, affiliate_id)
    with state.db.write() as conn:
        return PostbackUrlOut.of(
            svc.set_postback_url(conn, affiliate_id, program_id, body.url_template)
        )


@router.delete("/affiliates/{affiliate_id}/postbacks/{program_id}", status_code=204)
def delete_postback_url(
    affiliate_id: IdPath, program_id: ProgramPath, who: PrincipalDep, state: StateDep
) -> Response:
    """Remove the account default (program 0) or a program's template."""
    _affiliate(who, state, affiliate_id)
    with state.db.write() as conn:
        svc.delete_postback_url(conn, affiliate_id, program_id)
    return Response(status_code=204)


@router.post("/affiliates/{affiliate_id}/postbacks/test", response_model=DeliveryOut)
def test_postback(
    affiliate_id: IdPath, body: TestIn, who: PrincipalDep, state: StateDep
) -> DeliveryOut:
    """Send a sample postback now and answer how it went (logged as a test delivery)."""
    _affiliate(who, state, affiliate_id)
    try:
        result = fire_test(
            state.db, state.settings, affiliate_id, body.program_id, body.url_template
        )
    except svc.TooManyTests as exc:
        raise HTTPException(429, exc.message) from None
    return DeliveryOut.of(result.delivery)


@router.get("/affiliates/{affiliate_id}/postback-deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    affiliate_id: IdPath,
    who: PrincipalDep,
    state: StateDep,
    limit: int = Query(50, ge=1, le=500),
) -> list[DeliveryOut]:
    """List an affiliate's latest postback deliveries, newest first."""
    _affiliate(who, state, affiliate_id)
    with state.db.read() as conn:
        return [DeliveryOut.of(d) for d in svc.deliveries(conn, affiliate_id, limit)]
