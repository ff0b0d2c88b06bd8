"""The operator console: system health, merchants and affiliates to approve or ban,
all programs, the audit log, the mail outbox and the platform settings."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from tuike.config import effective_settings
from tuike.domain.errors import InvalidField, NotFound
from tuike.services import accounts, audit, mail, platform
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.web.portals import dashboards
from tuike.web.portals.account import see_other
from tuike.web.portals.rendering import N_, gettext_for, render
from tuike.web.portals.session import CsrfChecked, OperatorUser
from tuike.web.state import get_state

router = APIRouter(prefix="/operator", include_in_schema=False)


def health_context(request: Request) -> dict[str, Any]:
    """Build the system page: click-writer queue and lag, database round trip, counts."""
    state = get_state(request)
    started = time.perf_counter()
    counts: dict[str, int] = {}
    db_ok = True
    try:
        with state.db.read() as conn:
            for name, table in (
                ("merchants", t.merchants),
                ("affiliates", t.affiliates),
                ("programs", t.programs),
                ("conversions", t.conversions),
                ("outbox", t.email_outbox),
            ):
                counts[name] = int(
                    conn.execute(select(func.count()).select_from(table)).scalar_one()
                )
            pending = conn.execute(
                select(func.count())
                .select_from(t.merchants)
                .where(t.merchants.c.status == "pending")
            ).scalar_one()
    except Exception:  # the page must still show that the database is down
        db_ok, pending = False, 0
    db_ms = (time.perf_counter() - started) * 1000
    writer = state.writer
    return {
        "db_ok": db_ok,
        "db_ms": db_ms,
        "dialect": state.db.engine.dialect.name,
        "queue": writer.pending,
        "queue_limit": state.settings.writer_queue_limit,
        "lag_ms": writer.lag_seconds * 1000,
        "written": writer.written,
        "mode": state.settings.tracker_mode,
        "counts": counts,
        "pending_merchants": pending,
    }


@router.get("", response_class=HTMLResponse)
def system(request: Request, user: OperatorUser) -> Response:
    """Show system health: click-writer lag and queue depth, the database."""
    return render(request, "operator/system.html", health_context(request))


@router.get("/merchants", response_class=HTMLResponse)
def merchants(request: Request, user: OperatorUser) -> Response:
    """List merchants, pending ones first."""
    with get_state(request).db.read() as conn:
        rows = conn.execute(
            select(t.merchants).order_by(t.merchants.c.status != "pending", t.merchants.c.id)
        ).all()
    return render(request, "operator/accounts.html", {"kind": "merchant", "rows": rows})


def affiliates_context(request: Request) -> dict[str, Any]:
    """Build the affiliate list: flagged first, each with its score and every reason."""
    with get_state(request).db.read() as conn:
        rows = conn.execute(
            select(t.affiliates)
            .order_by(t.affiliates.c.quality_flagged.desc(), t.affiliates.c.id.desc())
            .limit(500)
        ).all()
    affiliates = [repo.affiliate_from_row(r) for r in rows]
    return {
        "kind": "affiliate",
        "rows": affiliates,
        "reasons": {a.id: a.quality_reasons or () for a in affiliates},
    }


@router.get("/affiliates", response_class=HTMLResponse)
def affiliates(request: Request, user: OperatorUser) -> Response:
    """List affiliates, those flagged for their traffic quality first, then newest first."""
    return render(request, "operator/accounts.html", affiliates_context(request))


@router.post("/{kind}s/{owner_id}/status", dependencies=[CsrfChecked])
def set_status(
    request: Request,
    user: OperatorUser,
    kind: str,
    owner_id: int,
    status: str = Form(...),
    reason: str = Form(""),
) -> Response:
    """Approve, ban or reinstate a merchant or affiliate (audit-logged)."""
    if kind not in ("merchant", "affiliate"):
        raise NotFound("page")
    with get_state(request).db.write() as conn:
        accounts.set_account_status(conn, kind, owner_id, status, actor=user.ref, reason=reason)
    return see_other(f"/operator/{kind}s")


@router.get("/programs", response_class=HTMLResponse)
def programs(request: Request, user: OperatorUser) -> Response:
    """List every program of every merchant."""
    with get_state(request).db.read() as conn:
        items = repo.list_programs(conn)
        names = {m.id: m.name for m in repo.list_merchants(conn)}
    rows = [
        {
            "program": p,
            "merchant": names.get(p.merchant_id, ""),
            "commission": dashboards.commission_text(p),
        }
        for p in items
    ]
    return render(request, "operator/programs.html", {"rows": rows})


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, user: OperatorUser) -> Response:
    """Show the audit log of privileged actions."""
    with get_state(request).db.read() as conn:
        entries = audit.recent(conn, limit=300, action=request.query_params.get("action") or None)
    return render(request, "operator/audit.html", {"entries": entries})


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, user: OperatorUser) -> Response:
    """Show the mail the platform queued (sign-up, reset and invitation links)."""
    with get_state(request).db.read() as conn:
        messages = mail.outbox(conn, to=request.query_params.get("to") or None)
    return render(request, "operator/outbox.html", {"messages": messages})


SETTING_TEXT: dict[str, tuple[str, str]] = {
    # key: (label, help) — message ids, translated when shown.
    "affiliate_signup_open": (
        N_("Affiliate sign-up open"),
        N_("New affiliates may create an account in the portal and over the API."),
    ),
    "merchant_signup_open": (
        N_("Merchant sign-up open"),
        N_("New merchants may apply; you still approve each one."),
    ),
    "platform_name": (
        N_("Platform name"),
        N_("Shown in every page's title and header, and in mails."),
    ),
    "support_email": (
        N_("Support email address"),
        N_("Shown at the foot of every page and in mails; leave empty to hide."),
    ),
    "default_cookie_days": (
        N_("Default cookie window (days)"),
        N_("For new programs created without their own cookie window."),
    ),
}


def settings_context(
    request: Request, values: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Build the settings page: the platform settings' form and the environment settings."""
    state = get_state(request)
    with state.db.read() as conn:
        current = platform.load(conn).as_dict()
        stored = platform.history(conn)
    shown = {**current, **(values or {})}
    fields = [
        {
            "key": spec.key,
            "kind": spec.kind.__name__,
            "label": SETTING_TEXT[spec.key][0],
            "help": SETTING_TEXT[spec.key][1],
            "value": shown[spec.key],
            "default": spec.default,
            "stored": stored.get(spec.key),
        }
        for spec in platform.REGISTRY
    ]
    return {
        "fields": fields,
        "env": effective_settings(state.settings),
        "error": "",
        "flash": "",
        **extra,
    }


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, user: OperatorUser, saved: int = 0) -> Response:
    """Show the platform settings, and the environment settings they run under."""
    _ = gettext_for(request)
    flash = _("Settings saved.") if saved else ""
    return render(request, "operator/settings.html", settings_context(request, flash=flash))


@router.post("/settings", dependencies=[CsrfChecked])
def save_settings(
    request: Request,
    user: OperatorUser,
    affiliate_signup_open: str = Form(""),
    merchant_signup_open: str = Form(""),
    platform_name: str = Form(""),
    support_email: str = Form(""),
    default_cookie_days: str = Form(""),
) -> Response:
    """Save the platform settings (all or nothing, audit-logged)."""
    raw_days = default_cookie_days.strip()
    # A non-number stays text, and the setting's check refuses it.
    days: int | str = int(raw_days) if raw_days.lstrip("-").isdigit() else raw_days
    values: dict[str, Any] = {
        # An unticked checkbox is not sent at all.
        "affiliate_signup_open": affiliate_signup_open == "on",
        "merchant_signup_open": merchant_signup_open == "on",
        "platform_name": platform_name,
        "support_email": support_email,
        "default_cookie_days": days,
    }
    state = get_state(request)
    try:
        with state.db.write() as conn:
            platform.update(conn, values, actor=user.ref)
    except InvalidField as exc:
        _ = gettext_for(request)
        label = SETTING_TEXT.get(exc.field, (exc.field, ""))[0]
        context = settings_context(request, values, error=f"{_(label)}: {exc.message}")
        return render(request, "operator/settings.html", context, 400)
    state.platform.invalidate()
    return see_other("/operator/settings?saved=1")
