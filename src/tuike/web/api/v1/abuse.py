"""Abuse reports over the API: anyone files one (no key, rate-limited per address); the
operator lists and resolves them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from tuike.domain.access import OPERATOR
from tuike.services import abuse
from tuike.web.api.v1.accounts import throttle
from tuike.web.api.v1.deps import IdPath, PrincipalDep, StateDep
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import Strict

# The public route carries no key, so no Idempotency-Key either (as sign-up).
public = APIRouter(tags=["abuse"])
router = APIRouter(route_class=IdempotentRoute, tags=["abuse"])
THROTTLE = "abuse:report"


class AbuseReportIn(Strict):
    link: str = Field(max_length=2048, description="The tracking link (…/c/CODE) or its code")
    kind: str = Field(description="group_spam | forum_spam | misleading | other")
    where_url: str = Field(
        "", max_length=2048, description="Where it was spammed: the page, or the group's name"
    )
    description: str = Field("", max_length=4000)
    reporter_email: str = Field("", max_length=254, description="To hear back; optional")


class AbuseReportFiled(BaseModel):
    id: int
    status: str = Field(description="open: the operator will look at it")


class AbuseReportOut(BaseModel):
    id: int
    link_code: str | None
    affiliate_id: int | None
    program_id: int | None
    kind: str
    where_url: str
    description: str
    reporter_email: str
    status: str = Field(description="open | upheld | dismissed")
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str

    @classmethod
    def of(cls, r: abuse.AbuseReport) -> AbuseReportOut:
        return cls(**{f: getattr(r, f) for f in cls.model_fields})


class ResolveIn(Strict):
    status: str = Field(description="upheld | dismissed")
    reason: str = Field(max_length=500, description="Required; kept in the audit log")


@public.post("/abuse-reports", status_code=201, response_model=AbuseReportFiled)
def file_report(body: AbuseReportIn, request: Request, state: StateDep) -> AbuseReportFiled:
    """Report a tracking link spammed into a group or forum, or misleading (no key)."""
    throttle(state, request, THROTTLE)
    with state.db.write() as conn:
        report = abuse.file_report(
            conn,
            link=body.link,
            kind=body.kind,
            where_url=body.where_url,
            description=body.description,
            reporter_email=body.reporter_email,
            reporter_ip=request.client.host if request.client else None,
            salt=state.settings.privacy_salt,
        )
    return AbuseReportFiled(id=report.id, status=report.status)


@router.get("/abuse-reports", response_model=list[AbuseReportOut])
def list_reports(
    who: PrincipalDep,
    state: StateDep,
    status: str | None = Query(None, description="open | upheld | dismissed"),
    limit: int = Query(200, ge=1, le=1000),
) -> list[AbuseReportOut]:
    """List abuse reports, newest first (operator)."""
    who.require(OPERATOR)
    with state.db.read() as conn:
        reports = abuse.list_reports(conn, status=status or None, limit=limit)
    return [AbuseReportOut.of(r) for r in reports]


@router.post("/abuse-reports/{report_id}/resolve", response_model=AbuseReportOut)
def resolve(
    report_id: IdPath, body: ResolveIn, who: PrincipalDep, state: StateDep
) -> AbuseReportOut:
    """Uphold or dismiss an open report with a reason (operator; audit-logged)."""
    who.require(OPERATOR)
    with state.db.write() as conn:
        report = abuse.resolve(conn, report_id, body.status, reason=body.reason, actor=who.ref)
    return AbuseReportOut.of(report)
