"""Conversions over the API (spec section 2) and conversion listings."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from tuike.domain.access import AFFILIATE, Principal
from tuike.domain.errors import Forbidden, NotFound
from tuike.services import conversion_queries, conversion_requests
from tuike.services import conversions as conv
from tuike.services.clock import utcnow
from tuike.services.screening import ScreenSettings
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import PrincipalDep, StateDep, report_scope
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import ConversionIn, ConversionOut

router = APIRouter(route_class=IdempotentRoute, tags=["conversions"])


@router.post(
    "/conversions",
    status_code=201,
    response_model=ConversionOut,
    responses={
        200: {"model": ConversionOut, "description": "a repeat or a status change"},
        400: {},
        401: {},
        409: {},
    },
)
def record(body: ConversionIn, who: PrincipalDep, state: StateDep) -> JSONResponse:
    """Record a conversion, or move an existing one along its lifecycle (program key)."""
    if who.role != "program" or who.owner_id is None:
        raise Forbidden("conversions are sent with a program API key")
    with state.db.write() as conn:
        program = repo.get_program(conn, who.owner_id)
        if program is None:
            raise NotFound("program")
        now = utcnow()
        req = conversion_requests.parse_request(
            body.model_dump(exclude_none=True),
            program,
            now=now,
            max_future=timedelta(seconds=state.settings.max_future_seconds),
        )
        result = conv.record_conversion(
            conn,
            program,
            req,
            source="api",
            privacy_salt=state.settings.privacy_salt,
            now=now,
            checks=ScreenSettings.of(state.settings),
        )
    return JSONResponse(result.body, status_code=result.http_status)


@router.get("/conversions", response_model=list[ConversionOut], response_model_exclude_none=True)
def list_conversions(
    who: PrincipalDep,
    state: StateDep,
    status: str | None = Query(None, description="pending | approved | rejected | refunded"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    """List the newest conversions visible to the caller."""
    with state.db.read() as conn:
        scope = report_scope(conn, who)
        rows = conversion_queries.list_conversions(
            conn,
            program_ids=scope.program_ids,
            affiliate_id=scope.affiliate_id,
            status=status,
            limit=limit,
        )
    return [_for(who, body) for body in rows]


def _for(who: Principal, body: dict) -> dict:
    """Return a conversion as the caller may see it: affiliates never see fraud scores."""
    if who.role == AFFILIATE:
        # Telling a fraudster which rules fired teaches them to dodge them.
        return {k: v for k, v in body.items() if k not in ("fraud_score", "held")}
    return body


@router.get(
    "/conversions/{conversion_id}", response_model=ConversionOut, response_model_exclude_none=True
)
def get_conversion(conversion_id: str, who: PrincipalDep, state: StateDep) -> dict:
    """Return one conversion visible to the caller."""
    with state.db.read() as conn:
        row = conversion_queries.get_conversion(conn, conversion_id)
        scope = report_scope(conn, who)
    if (
        row is None
        or (scope.program_ids is not None and row.program_id not in scope.program_ids)
        or (scope.affiliate_id is not None and row.affiliate_id != scope.affiliate_id)
    ):
        raise NotFound("conversion")
    return _for(who, conversion_queries.conversion_body(row))
