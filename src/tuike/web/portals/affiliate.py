"""The affiliate portal: dashboard, marketplace, link builder with QR codes, reports, profile."""

from __future__ import annotations

import csv
import io
from typing import Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.services import (
    accounts,
    catalog,
    conversion_queries,
    ledger,
    promotion,
    reports,
)
from tuike.services.creatives import snippet_for
from tuike.storage import catalog as repo
from tuike.storage.reports import Scope
from tuike.web.portals import dashboards
from tuike.web.portals.account import error_text, see_other
from tuike.web.portals.rendering import gettext_for, render
from tuike.web.portals.session import AffiliateUser, CsrfChecked
from tuike.web.state import get_state

router = APIRouter(prefix="/affiliate", include_in_schema=False)
SORTS = ("epc", "cr", "rate")
REPORT_GROUPS = ("day", "program", "sub1", "sub2", "sub3", "sub4", "sub5", "country", "device")


def _labels(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {"clicks": _("Clicks"), "conversions": _("Conversions"), "commission": _("Commission")}


def dashboard_context(request: Request, user: Any) -> dict[str, Any]:
    """Build the affiliate dashboard: balances, figures of the range, daily chart, latest sales."""
    state = get_state(request)
    q = dashboards.parse_range(dict(request.query_params), state.settings.default_timezone)
    with state.db.read() as conn:
        perf = dashboards.performance(
            conn, q, Scope(affiliate_id=user.owner_id), merchant_view=False
        )
        balances = ledger.balances(conn, "affiliate", user.owner_id)
        latest = conversion_queries.search_conversions(conn, affiliate_id=user.owner_id, limit=10)
        news = promotion.announcements_for(conn, user.owner_id, limit=3)
        names = {p.id: p.name for p in repo.list_programs(conn)}
    return {
        "q": q,
        "perf": perf,
        "chart": dashboards.chart(perf["series"], _labels(request)),
        "balances": balances,
        "latest": latest,
        "news": news,
        "program_names": names,
    }


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, user: AffiliateUser) -> Response:
    """Show earnings (pending, available, paid), clicks, conversions and EPC."""
    return render(request, "affiliate/dashboard.html", dashboard_context(request, user))


def marketplace_context(request: Request, user: Any) -> dict[str, Any]:
    """Build the marketplace: active programs with network EPC, filtered and sorted."""
    state = get_state(request)
    params = request.query_params
    category, model, sort = params.get("category", ""), params.get("model", ""), params.get("sort")
    sort = sort if sort in SORTS else "epc"
    q = dashboards.parse_range({}, state.settings.default_timezone)
    with state.db.read() as conn:
        programs = [p for p in repo.list_programs(conn) if p.active]
        stats = dashboards.cached(
            state.cache,
            f"offers:{q.start}:{q.end}",
            dashboards.OFFER_STATS_TTL,
            lambda: dashboards.offer_stats(conn, q),
        )
        mine = {
            m.program_id: m.status for m in repo.list_memberships(conn, affiliate_id=user.owner_id)
        }
    offers = []
    for p in programs:
        models = dashboards.models_of(p)
        if category and p.category != category:
            continue
        if model and model not in models:
            continue
        s = stats.get(p.id, {})
        offers.append(
            {
                "program": p,
                "models": models,
                "commission": dashboards.commission_text(p),
                "rate": p.plan.base.cps_percent or 0,
                "epc": s.get("epc"),
                "cr": s.get("cr"),
                "membership": mine.get(p.id, ""),
            }
        )
    key = {"epc": "epc", "cr": "cr", "rate": "rate"}[sort]
    offers.sort(key=lambda o: (o[key] is None, -(o[key] or 0), o["program"].name))
    return {
        "offers": offers,
        "categories": sorted({p.category for p in programs if p.category}),
        "category": category,
        "model": model,
        "sort": sort,
        "models": ("CPS", "CPA", "CPL"),
    }


@router.get("/programs", response_class=HTMLResponse)
def marketplace(request: Request, user: AffiliateUser) -> Response:
    """Show programs to join, by category and model, sorted by EPC, conversion or rate."""
    return render(request, "affiliate/marketplace.html", marketplace_context(request, user))


@router.post("/programs/{program_id}/apply", dependencies=[CsrfChecked])
def apply(request: Request, user: AffiliateUser, program_id: int) -> Response:
    """Apply to (join) a program."""
    with get_state(request).db.write() as conn:
        program = repo.get_program(conn, program_id)
        if program is None or not program.active:
            raise NotFound("program")
        catalog.apply_to_program(conn, program=program, affiliate_id=user.owner_id)
    return see_other("/affiliate/programs")


def links_context(
    request: Request, user: Any, *, error: str = "", form: dict | None = None
) -> dict:
    """Build the link builder: approved programs, the affiliate's links with share texts."""
    state = get_state(request)
    base = state.settings.public_url.rstrip("/")
    with state.db.read() as conn:
        approved = [
            m.program_id
            for m in repo.list_memberships(conn, affiliate_id=user.owner_id)
            if m.status == "approved"
        ]
        programs = {p.id: p for p in repo.list_programs(conn) if p.id in approved}
        links = repo.list_links(conn, affiliate_id=user.owner_id)
        creatives = {pid: repo.list_creatives(conn, pid, active_only=True) for pid in programs}
    rows = []
    for link in sorted(links, key=lambda x: x.id, reverse=True)[:200]:
        url = f"{base}/c/{link.code}"
        program = programs.get(link.program_id)
        gallery = [
            {"creative": c, "html": snippet_for(c, url, base)}
            for c in creatives.get(link.program_id, [])
        ]
        rows.append({"link": link, "url": url, "program": program, "gallery": gallery})
    return {
        "programs": list(programs.values()),
        "links": rows,
        "creatives": creatives,
        "new": request.query_params.get("new", ""),
        "base": base,
        "error": error,
        "form": form or {},
    }


@router.get("/links", response_class=HTMLResponse)
def links(request: Request, user: AffiliateUser) -> Response:
    """Show the link builder and the affiliate's links."""
    return render(request, "affiliate/links.html", links_context(request, user))


@router.post("/links", dependencies=[CsrfChecked])
def build_link(
    request: Request,
    user: AffiliateUser,
    program_id: int = Form(...),
    landing_url: str = Form(""),
    sub1: str = Form(""),
    sub2: str = Form(""),
    sub3: str = Form(""),
) -> Response:
    """Create a tracking link (landing page or deep link, plus sub ids)."""
    form = {
        "program_id": program_id,
        "landing_url": landing_url,
        "sub1": sub1,
        "sub2": sub2,
        "sub3": sub3,
    }
    try:
        with get_state(request).db.write() as conn:
            program = repo.get_program(conn, program_id)
            if program is None:
                raise NotFound("program")
            link = catalog.create_link(
                conn,
                program=program,
                affiliate_id=user.owner_id,
                landing_url=landing_url.strip() or None,
                subs=[sub1, sub2, sub3],
            )
    except (InvalidField, Conflict) as exc:
        context = links_context(request, user, error=error_text(request, exc), form=form)
        return render(request, "affiliate/links.html", context, 400)
    return see_other(f"/affiliate/links?new={link.code}")


@router.get("/links/{code}/qr.{kind}")
def qr(request: Request, user: AffiliateUser, code: str, kind: str) -> Response:
    """Return a link's QR code as SVG or PNG (for posters, IM groups and print)."""
    state = get_state(request)
    with state.db.read() as conn:
        link = repo.get_link_by_code(conn, code)
    if link is None or link.affiliate_id != user.owner_id or kind not in ("svg", "png"):
        raise NotFound("link")
    url = f"{state.settings.public_url.rstrip('/')}/c/{link.code}"
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind=kind, scale=8 if kind == "png" else 4, border=2)
    media = "image/svg+xml" if kind == "svg" else "image/png"
    return Response(
        buf.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'inline; filename="tuike-{code}.{kind}"'},
    )


def reports_context(request: Request, user: Any) -> dict[str, Any]:
    """Build the report page: rows grouped by the chosen key (sub ids included)."""
    state = get_state(request)
    params = dict(request.query_params)
    q = dashboards.parse_range(params, state.settings.default_timezone)
    group = params.get("group_by", "day")
    group = group if group in REPORT_GROUPS else "day"
    query = reports.ReportQuery(q.start, q.end, (group,), q.tz)
    with state.db.read() as conn:
        rows = reports.run_report(
            conn, query, Scope(affiliate_id=user.owner_id), merchant_view=False
        )
    return {"q": q, "group": group, "groups": REPORT_GROUPS, "rows": rows}


@router.get("/reports", response_class=HTMLResponse)
def report(request: Request, user: AffiliateUser) -> Response:
    """Show performance by day, program or sub id; ``format=csv`` downloads it."""
    context = reports_context(request, user)
    if request.query_params.get("format") == "csv":
        return csv_response(context["rows"], [context["group"]], "tuike-report.csv")
    return render(request, "affiliate/reports.html", context)


def csv_response(rows: list[dict[str, Any]], keys: list[str], filename: str) -> Response:
    """Return report rows as a CSV download."""
    columns = [
        *keys,
        "currency",
        "clicks",
        "unique_clicks",
        "conversions",
        "conversion_rate",
        "amount",
        "commission",
        "epc",
    ]
    if rows and "cost" in rows[0]:
        columns += ["cost", "roi"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def profile_context(request: Request, user: Any, *, error: str = "", flash: str = "") -> dict:
    """Build the profile page: name, time zone, channels and payout details."""
    with get_state(request).db.read() as conn:
        affiliate = repo.get_affiliate(conn, user.owner_id)
        payout = accounts.payout_details(conn, user.owner_id)
    return {
        "affiliate": affiliate,
        "payout": payout,
        "methods": accounts.PAYOUT_METHODS,
        "channel_kinds": catalog.CHANNEL_KINDS,
        "error": error,
        "flash": flash,
    }


@router.get("/profile", response_class=HTMLResponse)
def profile(request: Request, user: AffiliateUser) -> Response:
    """Show the affiliate's profile, channels and payout details."""
    return render(request, "affiliate/profile.html", profile_context(request, user))


@router.post("/profile", dependencies=[CsrfChecked])
def save_profile(
    request: Request,
    user: AffiliateUser,
    name: str = Form(""),
    timezone: str = Form(""),
    payout_method: str = Form(""),
    payout_account: str = Form(""),
    payout_name: str = Form(""),
) -> Response:
    """Save the profile and payout details."""
    _ = gettext_for(request)
    try:
        with get_state(request).db.write() as conn:
            accounts.update_affiliate_profile(
                conn,
                user.owner_id,
                name=name,
                timezone=timezone,
                payout_method=payout_method,
                payout_account=payout_account,
                payout_name=payout_name,
                actor=user.ref,
                salt=get_state(request).settings.privacy_salt,
            )
    except (InvalidField, Conflict) as exc:
        context = profile_context(request, user, error=error_text(request, exc))
        return render(request, "affiliate/profile.html", context, 400)
    return render(
        request, "affiliate/profile.html", profile_context(request, user, flash=_("Saved."))
    )


@router.post("/channels", dependencies=[CsrfChecked])
def add_channel(
    request: Request,
    user: AffiliateUser,
    kind: str = Form(""),
    name: str = Form(""),
    url: str = Form(""),
) -> Response:
    """Declare another channel the affiliate promotes on."""
    try:
        with get_state(request).db.write() as conn:
            catalog.add_channel(conn, user.owner_id, kind=kind, name=name, url=url)
    except InvalidField as exc:
        context = profile_context(request, user, error=error_text(request, exc))
        return render(request, "affiliate/profile.html", context, 400)
    return see_other("/affiliate/profile")
