"""Abuse reports in the portals: the public form anyone may use (no sign-in), and the
operator's queue where reports are upheld or dismissed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from tuike.domain.errors import Conflict, InvalidField
from tuike.services import abuse, auth
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.web.portals.account import error_text, see_other
from tuike.web.portals.rendering import gettext_for, render
from tuike.web.portals.session import CsrfChecked, OperatorUser
from tuike.web.state import get_state

router = APIRouter(include_in_schema=False)
THROTTLE = "abuse:report"  # shared with POST /api/v1/abuse-reports


def report_context(request: Request, form: dict[str, str], **extra: Any) -> dict[str, Any]:
    """Build the public report form (``filed``: the id of the report just filed)."""
    return {
        "form": {"kind": "group_spam", **form},
        "kinds": abuse.KINDS,
        "public_url": get_state(request).settings.public_url.rstrip("/"),
        "filed": None,
        "error": "",
        **extra,
    }


@router.get("/report-abuse", response_class=HTMLResponse)
def report_page(request: Request, link: str = "") -> Response:
    """Show the form to report a spammed or misleading link (anyone, no sign-in)."""
    return render(request, "report_abuse.html", report_context(request, {"link": link[:2048]}))


@router.post("/report-abuse", dependencies=[CsrfChecked])
def file_report(
    request: Request,
    link: str = Form(""),
    kind: str = Form(""),
    where_url: str = Form(""),
    description: str = Form(""),
    reporter_email: str = Form(""),
) -> Response:
    """File a report (rate-limited per address like the public sign-up routes)."""
    state = get_state(request)
    settings = state.settings
    form = {
        "link": link,
        "kind": kind,
        "where_url": where_url,
        "description": description,
        "reporter_email": reporter_email,
    }
    ip = request.client.host if request.client else ""
    with state.db.write() as conn:
        allowed = auth.take_attempt(
            conn,
            THROTTLE,
            ip,
            limit=settings.login_max_failures_per_ip,
            window=timedelta(minutes=settings.login_window_minutes),
        )
    _ = gettext_for(request)
    if not allowed:
        message = _("Too many reports from your address. Wait a few minutes and try again.")
        return render(
            request, "report_abuse.html", report_context(request, form, error=message), 429
        )
    try:
        with state.db.write() as conn:
            report = abuse.file_report(
                conn,
                link=link,
                kind=kind,
                where_url=where_url,
                description=description,
                reporter_email=reporter_email,
                reporter_ip=ip,
                salt=settings.privacy_salt,
            )
    except InvalidField as exc:
        context = report_context(request, form, error=error_text(request, exc))
        return render(request, "report_abuse.html", context, 400)
    return render(request, "report_abuse.html", report_context(request, {}, filed=report.id), 201)


def abuse_context(request: Request, **extra: Any) -> dict[str, Any]:
    """Build the operator's queue: reports of a status (open first), with names."""
    status = request.query_params.get("status") or "open"
    if status not in abuse.STATUSES:
        status = "open"
    with get_state(request).db.read() as conn:
        rows = abuse.list_reports(conn, status=status, limit=300)
        affiliate_ids = list({r.affiliate_id for r in rows if r.affiliate_id})
        affiliates = {a.id: a.name for a in repo.list_affiliates(conn, affiliate_ids)}
        programs = {p.id: p.name for p in repo.list_programs(conn)}
        upheld = dict(
            conn.execute(
                select(t.abuse_reports.c.affiliate_id, func.count())
                .where(
                    t.abuse_reports.c.affiliate_id.in_(affiliate_ids),
                    t.abuse_reports.c.status == "upheld",
                )
                .group_by(t.abuse_reports.c.affiliate_id)
            ).all()
        )
    return {
        "rows": rows,
        "status": status,
        "statuses": abuse.STATUSES,
        "affiliates": affiliates,
        "programs": programs,
        "reports_by_affiliate": upheld,
        "error": "",
        "flash": "",
        **extra,
    }


@router.get("/operator/abuse", response_class=HTMLResponse)
def abuse_queue(request: Request, user: OperatorUser) -> Response:
    """Show the abuse reports to work through."""
    return render(request, "operator/abuse.html", abuse_context(request))


@router.post("/operator/abuse/{report_id}/resolve", dependencies=[CsrfChecked])
def resolve(
    request: Request,
    user: OperatorUser,
    report_id: int,
    status: str = Form(""),
    reason: str = Form(""),
) -> Response:
    """Uphold or dismiss a report with a reason (audit-logged)."""
    try:
        with get_state(request).db.write() as conn:
            abuse.resolve(conn, report_id, status, reason=reason, actor=user.ref)
    except (InvalidField, Conflict) as exc:
        code = 400 if isinstance(exc, InvalidField) else 409
        context = abuse_context(request, error=error_text(request, exc))
        return render(request, "operator/abuse.html", context, code)
    return see_other("/operator/abuse")
