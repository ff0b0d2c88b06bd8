"""The merchant console: dashboard, programs, affiliates, conversions, integration, team."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from tuike.domain import ids
from tuike.domain.catalog import Program
from tuike.domain.commission import plan_to_dict
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.fraud.quality import reasons_seen_by
from tuike.services import (
    accounts,
    audit,
    catalog,
    conversion_queries,
    conversion_requests,
    conversions,
    keys,
    reports,
    users,
)
from tuike.services.screening import ScreenSettings
from tuike.storage import catalog as repo
from tuike.storage.clicks import latest_click
from tuike.storage.reports import Scope
from tuike.web.portals import dashboards
from tuike.web.portals.account import error_text, see_other
from tuike.web.portals.affiliate import _labels
from tuike.web.portals.rendering import gettext_for, render
from tuike.web.portals.session import CsrfChecked, MerchantUser, MerchantWriter
from tuike.web.state import get_state

router = APIRouter(prefix="/merchant", include_in_schema=False)
STATUSES = ("pending", "approved", "rejected", "refunded")
PAGE_ROWS = 100
# Runs the dashboard's by-day pass beside its by-affiliate pass (see dashboard_context).
_PASSES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tuike-dashboard")
CSV_ROWS = 50_000


def _programs(conn: Any, user: users.User) -> list[Program]:
    return repo.list_programs(conn, merchant_id=user.owner_id)


def _own_program(conn: Any, user: users.User, program_id: int) -> Program:
    program = repo.get_program(conn, program_id)
    if program is None or program.merchant_id != user.owner_id:
        raise NotFound("program")
    return program


def dashboard_context(request: Request, user: users.User) -> dict[str, Any]:
    """Build the dashboard: figures and ROI of the range, daily chart, top affiliates, channels."""
    state = get_state(request)
    q = dashboards.parse_range(dict(request.query_params), state.settings.default_timezone)
    with state.db.read() as conn:
        program_ids = tuple(p.id for p in _programs(conn, user))
    scope = Scope(program_ids=program_ids)

    def by_day() -> dict[str, Any]:
        with state.db.read() as conn:
            return dashboards.performance(conn, q, scope, merchant_view=True)

    # Two passes over the rollups (by day, by affiliate) cost less than one pass grouped by
    # both (SQLite then computes the local day of far fewer groups), and they run at once on
    # two connections: both databases scan without holding the GIL.
    day_pass = _PASSES.submit(by_day)
    with state.db.read() as conn:
        by_aff = dashboards.by_affiliate(
            reports.run_report(
                conn,
                reports.ReportQuery(q.start, q.end, ("affiliate",), q.tz),
                scope,
                merchant_view=True,
            )
        )
        affiliates = {
            a.id: a
            for a in repo.list_affiliates(
                conn, list({r["affiliate"] for r in by_aff}), with_channels=True
            )
        }
    perf = day_pass.result()
    top = sorted(by_aff, key=lambda r: (-r["commission"], -r["clicks"]))[:10]
    mix: dict[str, dict[str, Any]] = {}
    for r in by_aff:
        a = affiliates.get(r["affiliate"])
        kind = a.channels[0].kind if a and a.channels else "other"
        m = mix.setdefault(kind, {"kind": kind, "clicks": 0, "conversions": 0})
        m["clicks"] += r["clicks"]
        m["conversions"] += r["conversions"]
    return {
        "q": q,
        "perf": perf,
        "chart": dashboards.chart(perf["series"], _labels(request)),
        "top": top,
        "mix": sorted(mix.values(), key=lambda m: -m["clicks"]),
        "has_programs": bool(program_ids),
    }


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, user: MerchantUser) -> Response:
    """Show clicks, conversions, GMV, commission, EPC and ROI per day."""
    return render(request, "merchant/dashboard.html", dashboard_context(request, user))


@router.get("/programs", response_class=HTMLResponse)
def programs(request: Request, user: MerchantUser) -> Response:
    """List the merchant's programs."""
    with get_state(request).db.read() as conn:
        items = _programs(conn, user)
    rows = [{"program": p, "commission": dashboards.commission_text(p)} for p in items]
    return render(request, "merchant/programs.html", {"programs": rows})


def program_context(
    program: Program, *, error: str = "", flash: str = "", form: dict | None = None
) -> dict:
    """Build the program form from the stored program (or the refused input)."""
    values = {
        "name": program.name,
        "landing_url": program.landing_url,
        "fallback_url": program.fallback_url or "",
        "allowed_domains": ", ".join(program.allowed_domains),
        "cookie_days": program.cookie_days,
        "lock_days": program.lock_days,
        "category": program.category,
        "status": program.status,
        "commission_plan": json.dumps(plan_to_dict(program.plan), indent=2, ensure_ascii=False),
    }
    return {"program": program, "form": form or values, "error": error, "flash": flash}


@router.get("/programs/{program_id}", response_class=HTMLResponse)
def program_page(request: Request, user: MerchantUser, program_id: int) -> Response:
    """Show a program's settings form."""
    with get_state(request).db.read() as conn:
        program = _own_program(conn, user, program_id)
    return render(request, "merchant/program.html", program_context(program))


@router.post("/programs/{program_id}", dependencies=[CsrfChecked])
def save_program(
    request: Request,
    user: MerchantWriter,
    program_id: int,
    name: str = Form(""),
    landing_url: str = Form(""),
    fallback_url: str = Form(""),
    allowed_domains: str = Form(""),
    cookie_days: str = Form(""),
    lock_days: str = Form(""),
    category: str = Form(""),
    status: str = Form("active"),
    commission_plan: str = Form(""),
) -> Response:
    """Save a program: landing and fallback URLs, domains, windows, commission plan."""
    form = {
        "name": name,
        "landing_url": landing_url,
        "fallback_url": fallback_url,
        "allowed_domains": allowed_domains,
        "cookie_days": cookie_days,
        "lock_days": lock_days,
        "category": category,
        "status": status,
        "commission_plan": commission_plan,
    }
    _ = gettext_for(request)
    with get_state(request).db.read() as conn:
        program = _own_program(conn, user, program_id)
    try:
        try:
            plan = json.loads(commission_plan)
        except ValueError:
            raise InvalidField("commission_plan", "is not valid JSON") from None
        fields: dict[str, Any] = {
            "name": name,
            "landing_url": landing_url.strip(),
            "fallback_url": fallback_url.strip() or None,
            "allowed_domains": [d.strip() for d in allowed_domains.split(",") if d.strip()],
            "category": category,
            "status": status,
            "commission_plan": plan,
        }
        for key, raw in (("cookie_days", cookie_days), ("lock_days", lock_days)):
            try:
                fields[key] = int(raw)
            except ValueError:
                raise InvalidField(key, "must be a whole number of days") from None
        with get_state(request).db.write() as conn:
            updated = catalog.update_program(conn, program, **fields)
            audit.record(conn, user.ref, "program.update", f"program:{program.id}")
    except (InvalidField, Conflict) as exc:
        context = program_context(program, error=error_text(request, exc), form=form)
        return render(request, "merchant/program.html", context, 400)
    return render(request, "merchant/program.html", program_context(updated, flash=_("Saved.")))


def affiliates_context(request: Request, user: users.User) -> dict[str, Any]:
    """Build the affiliates page: applications and members of the merchant's programs."""
    status = request.query_params.get("status") or "applied"
    with get_state(request).db.read() as conn:
        programs = {p.id: p for p in _programs(conn, user)}
        members = repo.list_memberships(
            conn, program_ids=list(programs), status=None if status == "all" else status
        )
        affiliates = {
            a.id: a
            for a in repo.list_affiliates(
                conn, [m.affiliate_id for m in members], with_channels=True
            )
        }
    rows = []
    for m in members:
        a = affiliates.get(m.affiliate_id)
        rows.append(
            {
                "membership": m,
                "program": programs[m.program_id],
                "affiliate": a,
                # Evidence from another merchant's programs is withheld (code and weight only).
                "reasons": reasons_seen_by(a.quality_reasons or (), programs) if a else (),
            }
        )
    return {
        "rows": rows,
        "status": status,
        "statuses": ("applied", "approved", "rejected", "banned", "all"),
    }


@router.get("/affiliates", response_class=HTMLResponse)
def affiliates(request: Request, user: MerchantUser) -> Response:
    """List applications to approve, and the program's affiliates."""
    return render(request, "merchant/affiliates.html", affiliates_context(request, user))


@router.post("/memberships/{membership_id}", dependencies=[CsrfChecked])
def decide(
    request: Request,
    user: MerchantWriter,
    membership_id: int,
    status: str = Form(...),
    reason: str = Form(""),
    group: str = Form(""),
) -> Response:
    """Approve, reject or ban an affiliate in a program, with a reason (audit-logged)."""
    with get_state(request).db.write() as conn:
        membership = repo.get_membership_by_id(conn, membership_id)
        if membership is None:
            raise NotFound("membership")
        _own_program(conn, user, membership.program_id)
        if status in ("rejected", "banned") and not reason.strip():
            raise InvalidField("reason", "is required to reject or ban")
        catalog.decide_membership(conn, membership, status=status, group=group or None)
        audit.record(
            conn,
            user.ref,
            f"membership.{status}",
            f"membership:{membership_id}",
            reason=reason.strip()[:500],
            affiliate_id=membership.affiliate_id,
        )
    return see_other("/merchant/affiliates")


def conversions_context(
    request: Request, user: users.User, csv_export: bool = False
) -> dict[str, Any]:
    """Build the conversions page: filtered by program, status, order id and days, a page
    of ``PAGE_ROWS`` at a time (``before`` = the last id shown); CSV takes ``CSV_ROWS``."""
    state = get_state(request)
    params = request.query_params
    before = params.get("before", "")
    q = dashboards.parse_range(dict(params), state.settings.default_timezone)
    zone = ZoneInfo(q.tz)
    status = params.get("status", "")
    with state.db.read() as conn:
        programs = {p.id: p for p in _programs(conn, user)}
        wanted = params.get("program", "")
        ids_ = [int(wanted)] if wanted.isdigit() and int(wanted) in programs else list(programs)
        rows = conversion_queries.search_conversions(
            conn,
            program_ids=ids_,
            status=status if status in STATUSES else None,
            order_id=params.get("order_id") or None,
            since=datetime.combine(q.start, time.min, zone).astimezone(UTC),
            until=datetime.combine(q.end + timedelta(days=1), time.min, zone).astimezone(UTC),
            before_id=before if ids.is_ulid(before) else None,
            limit=CSV_ROWS if csv_export else PAGE_ROWS,
        )
        names = {
            a.id: a.name
            for a in repo.list_affiliates(
                conn, list({r["affiliate_id"] for r in rows if r["affiliate_id"]})
            )
        }
    return {
        "q": q,
        "rows": rows,
        "programs": programs,
        "program": wanted,
        "status": status,
        "statuses": STATUSES,
        "order_id": params.get("order_id", ""),
        "affiliate_names": names,
        "flash": params.get("done", ""),
        "next_page": (
            "?" + request.url.include_query_params(before=rows[-1]["id"]).query
            if len(rows) == PAGE_ROWS and not csv_export
            else ""
        ),
        "paged": bool(before),
    }


@router.get("/conversions", response_class=HTMLResponse)
def conversion_list(request: Request, user: MerchantUser) -> Response:
    """List conversions with filters; ``format=csv`` downloads them."""
    csv_export = request.query_params.get("format") == "csv"
    context = conversions_context(request, user, csv_export)
    if csv_export:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "conversion_id",
                "occurred_at",
                "program",
                "affiliate",
                "event",
                "order_id",
                "status",
                "currency",
                "amount",
                "commission",
                "source",
            ]
        )
        for r in context["rows"]:
            writer.writerow(
                [
                    r["id"],
                    r["occurred_at"].isoformat(),
                    context["programs"][r["program_id"]].name,
                    context["affiliate_names"].get(r["affiliate_id"], ""),
                    r["event"],
                    r["order_id"],
                    r["status"],
                    r["currency"],
                    r["amount"],
                    r["commission"],
                    r["source"],
                ]
            )
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="tuike-conversions.csv"'},
        )
    return render(request, "merchant/conversions.html", context)


@router.post("/conversions/review", dependencies=[CsrfChecked])
async def review(request: Request, user: MerchantWriter) -> Response:
    """Approve or reject the ticked pending conversions, with a reason."""
    form = await request.form()
    action = str(form.get("action", ""))
    reason = str(form.get("reason", ""))
    chosen = [str(v) for v in form.getlist("ids") if ids.is_ulid(str(v))][:500]
    if action not in ("approved", "rejected"):
        raise InvalidField("action", "must be approved or rejected")
    if not chosen:
        raise InvalidField("ids", "tick at least one conversion")
    state = get_state(request)
    with state.db.write() as conn:
        owned = {p.id for p in _programs(conn, user)}
        for conversion_id in chosen:
            row = conversion_queries.get_conversion(conn, conversion_id)
            if row is None or row.program_id not in owned:
                raise NotFound("conversion")
            conversions.review_conversion(conn, conversion_id, action, reason=reason, by="merchant")
        audit.record(
            conn,
            user.ref,
            f"conversions.{action}",
            f"merchant:{user.owner_id}",
            count=len(chosen),
            reason=reason[:500],
            ids=chosen[:50],
        )
    return see_other(f"/merchant/conversions?done={len(chosen)}")


def integration_context(request: Request, user: users.User, program_id: int, **extra: Any) -> dict:
    """Build the integration page: keys, filled-in postback/pixel/S2S examples, the snippet."""
    state = get_state(request)
    base = state.settings.public_url.rstrip("/")
    with state.db.read() as conn:
        program = _own_program(conn, user, program_id)
        program_keys = keys.list_keys(conn, role="program", owner_id=program.id)
        click = latest_click(conn, program.id, datetime.now(UTC) - timedelta(days=1))
    param = program.click_param
    snippet = (
        "<script>\n(function () {\n"
        f"  var id = new URLSearchParams(location.search).get({json.dumps(param)});\n"
        "  if (id) {\n"
        f"    document.cookie = {json.dumps(param + '=')} + encodeURIComponent(id) +\n"
        f"      '; Max-Age={program.cookie_days * 86400}; Path=/; SameSite=Lax' +\n"
        "      (location.protocol === 'https:' ? '; Secure' : '');\n"
        "  }\n})();\n</script>"
    )
    s2s = (
        f"curl -X POST {base}/api/v1/conversions \\\n"
        "  -H 'Authorization: Bearer <program API key>' -H 'Content-Type: application/json' \\\n"
        f'  -d \'{{"event": "sale", "order_id": "A-10023", "click_id": "<{param}>", '
        f'"amount": "199.00", "currency": "{program.currency}", "status": "pending"}}\''
    )
    postback = (
        f"{base}/pb?key=<program API key>&event=sale&order_id={{order_id}}&click_id={{{param}}}"
        f"&amount={{amount}}&currency={program.currency}&status=pending"
    )
    pixel = (
        f'<img src="{base}/px.gif?program={program.public_id}&event=sale&order_id=ORDER_ID'
        f'&amount=AMOUNT&currency={program.currency}" width="1" height="1" alt="">'
    )
    return {
        "program": program,
        "keys": program_keys,
        "snippet": snippet,
        "s2s": s2s,
        "postback": postback,
        "pixel": pixel,
        "latest_click": click or "",
        "test_order": f"TEST-{ids.new_ulid()[-8:]}",
        "result": None,
        "new_key": "",
        "error": "",
        **extra,
    }


@router.get("/programs/{program_id}/integration", response_class=HTMLResponse)
def integration(request: Request, user: MerchantUser, program_id: int) -> Response:
    """Show how to send conversions, with this program's real values."""
    return render(
        request, "merchant/integration.html", integration_context(request, user, program_id)
    )


@router.post("/programs/{program_id}/keys", dependencies=[CsrfChecked])
def create_program_key(
    request: Request, user: MerchantWriter, program_id: int, name: str = Form("")
) -> Response:
    """Create a program key (for server-to-server conversions) and show it once."""
    with get_state(request).db.write() as conn:
        program = _own_program(conn, user, program_id)
        raw = keys.create_key(
            conn, role="program", owner_id=program.id, name=name[:200] or "server", user_id=user.id
        )
        audit.record(conn, user.ref, "api_key.create", f"program:{program.id}", name=name)
    context = integration_context(request, user, program_id, new_key=raw)
    return render(request, "merchant/integration.html", context, 201)


@router.post("/programs/{program_id}/test-conversion", dependencies=[CsrfChecked])
def test_conversion(
    request: Request,
    user: MerchantWriter,
    program_id: int,
    click_id: str = Form(""),
    order_id: str = Form(""),
    amount: str = Form("100.00"),
) -> Response:
    """Send a conversion through the real pipeline and show what it recorded."""
    state = get_state(request)
    now = datetime.now(UTC)
    try:
        with state.db.write() as conn:
            program = _own_program(conn, user, program_id)
            req = conversion_requests.parse_request(
                {
                    "event": "sale"
                    if "sale" in program.plan.events()
                    else sorted(program.plan.events())[0],
                    "order_id": order_id or f"TEST-{ids.new_ulid()[-8:]}",
                    "click_id": click_id.strip() or None,
                    "amount": amount,
                    "status": "pending",
                },
                program,
                now=now,
                max_future=timedelta(seconds=state.settings.max_future_seconds),
            )
            result = conversions.record_conversion(
                conn,
                program,
                req,
                source="api",
                privacy_salt=state.settings.privacy_salt,
                now=now,
                checks=ScreenSettings.of(state.settings),
            )
            audit.record(
                conn,
                user.ref,
                "conversion.test",
                f"program:{program.id}",
                conversion_id=result.body["conversion_id"],
            )
    except (InvalidField, Conflict) as exc:
        context = integration_context(request, user, program_id, error=error_text(request, exc))
        return render(request, "merchant/integration.html", context, 400)
    context = integration_context(request, user, program_id, result=result.body)
    return render(request, "merchant/integration.html", context)


def team_context(request: Request, user: users.User, **extra: Any) -> dict[str, Any]:
    """Build the team page: the merchant's users and their roles."""
    with get_state(request).db.read() as conn:
        members = users.users_of(conn, "merchant", user.owner_id)
    return {"members": members, "roles": users.MEMBER_ROLES, "error": "", "flash": "", **extra}


@router.get("/team", response_class=HTMLResponse)
def team(request: Request, user: MerchantUser) -> Response:
    """List the merchant's users."""
    return render(request, "merchant/team.html", team_context(request, user))


@router.post("/team", dependencies=[CsrfChecked])
def invite(
    request: Request,
    user: MerchantWriter,
    email: str = Form(""),
    name: str = Form(""),
    member_role: str = Form("analyst"),
) -> Response:
    """Add a user to the team; they get a link to set their password."""
    _ = gettext_for(request)
    state = get_state(request)
    try:
        with state.db.write() as conn:
            accounts.add_member(
                conn,
                merchant_id=user.owner_id,
                email=email,
                name=name,
                member_role=member_role,
                actor=user,
                reset_url=f"{state.settings.public_url}/password/reset",
            )
    except (InvalidField, Conflict) as exc:
        return render(
            request,
            "merchant/team.html",
            team_context(request, user, error=error_text(request, exc)),
            400,
        )
    return render(
        request, "merchant/team.html", team_context(request, user, flash=_("Invitation sent."))
    )


@router.post("/team/{user_id}", dependencies=[CsrfChecked])
def set_member(
    request: Request,
    user: MerchantWriter,
    user_id: int,
    member_role: str = Form(...),
    status: str = Form("active"),
) -> Response:
    """Change a team member's role, or disable them (owners only)."""
    try:
        with get_state(request).db.write() as conn:
            accounts.set_member_role(
                conn, actor=user, user_id=user_id, member_role=member_role, status=status
            )
    except (InvalidField, Conflict) as exc:
        return render(
            request,
            "merchant/team.html",
            team_context(request, user, error=error_text(request, exc)),
            400,
        )
    return see_other("/merchant/team")
