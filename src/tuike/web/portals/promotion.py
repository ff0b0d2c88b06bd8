"""Merchant tools to work affiliates: creatives, coupons, groups, invitation links and
announcements; and the affiliate's side of them (joining by link, reading news)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from tuike.domain.catalog import Program
from tuike.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from tuike.services import audit, catalog, creatives, promotion, users
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.web.portals.account import error_text, see_other
from tuike.web.portals.rendering import gettext_for, render
from tuike.web.portals.session import (
    AffiliateUser,
    CsrfChecked,
    MerchantUser,
    MerchantWriter,
    current_user,
)
from tuike.web.state import get_state

router = APIRouter(include_in_schema=False)
REFUSED = (InvalidField, Conflict, Forbidden, NotFound)


def _own_program(conn: Any, user: users.User, program_id: int) -> Program:
    program = repo.get_program(conn, program_id)
    if program is None or program.merchant_id != user.owner_id:
        raise NotFound("program")
    return program


def _page(
    request: Request, template: str, context: dict[str, Any], error: Exception | None = None
) -> Response:
    if error is not None:
        context["error"] = error_text(request, error)
    return render(request, template, context, 400 if error is not None else 200)


# -- creatives -------------------------------------------------------------------------


def creatives_context(request: Request, user: users.User, program_id: int, **extra: Any) -> dict:
    """Build the creatives page: the program's creatives and the three ways to add one."""
    state = get_state(request)
    with state.db.read() as conn:
        program = _own_program(conn, user, program_id)
        items = repo.list_creatives(conn, program.id)
    return {
        "program": program,
        "tab": "creatives",
        "creatives": items,
        "base": state.settings.public_url.rstrip("/"),
        "iab": creatives.IAB_SIZES,
        "max_bytes": state.settings.banner_max_bytes,
        "form": {},
        "error": "",
        **extra,
    }


@router.get("/merchant/programs/{program_id}/creatives", response_class=HTMLResponse)
def creatives_page(request: Request, user: MerchantUser, program_id: int) -> Response:
    """List a program's text links, banners and HTML snippets."""
    return render(request, "merchant/creatives.html", creatives_context(request, user, program_id))


@router.post("/merchant/programs/{program_id}/creatives", dependencies=[CsrfChecked])
async def add_creative(
    request: Request,
    user: MerchantWriter,
    program_id: int,
    kind: str = Form(...),
    name: str = Form(""),
    landing_url: str = Form(""),
    body: str = Form(""),
    width: str = Form(""),
    height: str = Form(""),
    file: UploadFile | None = File(None),
) -> Response:
    """Add a text link, a banner (upload, checked) or an HTML snippet (sanitised)."""
    state = get_state(request)
    limit = state.settings.banner_max_bytes
    data = await file.read(limit + 1) if file is not None else b""
    form = {"kind": kind, "name": name, "landing_url": landing_url, "body": body}
    try:
        size = [int(v) if v.strip() else None for v in (width, height)]
    except ValueError:
        size = [None, None]
        err: Exception | None = InvalidField("width", "must be a whole number of pixels")
    else:
        err = None
    if err is None:
        try:
            with state.db.write() as conn:
                program = _own_program(conn, user, program_id)
                if kind == "text":
                    made = creatives.add_text_link(
                        conn, program, name=name, text=body, landing_url=landing_url.strip()
                    )
                elif kind == "html":
                    made = creatives.add_snippet(
                        conn, program, name=name, markup=body, landing_url=landing_url.strip()
                    )
                elif kind == "banner":
                    made = creatives.add_banner(
                        conn,
                        program,
                        name=name,
                        data=data,
                        max_bytes=limit,
                        landing_url=landing_url.strip(),
                        width=size[0],
                        height=size[1],
                    )
                else:
                    raise InvalidField("kind", "must be text, banner or html")
                audit.record(
                    conn, user.ref, "creative.create", f"creative:{made.id}", kind=made.kind
                )
        except REFUSED as exc:
            err = exc
    if err is not None:
        context = creatives_context(request, user, program_id, form=form)
        return _page(request, "merchant/creatives.html", context, err)
    return see_other(f"/merchant/programs/{program_id}/creatives")


@router.post("/merchant/creatives/{creative_id}/status", dependencies=[CsrfChecked])
def creative_status(
    request: Request, user: MerchantWriter, creative_id: int, status: str = Form(...)
) -> Response:
    """Archive a creative (it leaves the gallery; links made with it keep working) or restore it."""
    with get_state(request).db.write() as conn:
        creative = repo.get_creative(conn, creative_id)
        if creative is None:
            raise NotFound("creative")
        _own_program(conn, user, creative.program_id)
        creatives.set_status(conn, creative, status)
        audit.record(conn, user.ref, f"creative.{status}", f"creative:{creative_id}")
    return see_other(f"/merchant/programs/{creative.program_id}/creatives")


@router.get("/creatives/{creative_id}/image.{ext}")
def creative_image(request: Request, creative_id: int, ext: str) -> Response:
    """Serve an uploaded banner (public: affiliates embed it on their pages)."""
    with get_state(request).db.read() as conn:
        row = creatives.get_image(conn, creative_id)
    if creatives.EXTENSIONS[row.content_type] != ext:
        raise NotFound("creative")
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(row.data, media_type=row.content_type, headers=headers)


# -- coupons ---------------------------------------------------------------------------


def coupons_context(request: Request, user: users.User, program_id: int, **extra: Any) -> dict:
    """Build the coupons page: the program's codes, their owners and the approved affiliates."""
    with get_state(request).db.read() as conn:
        program = _own_program(conn, user, program_id)
        codes = repo.list_coupons(conn, program_ids=[program.id])
        members = repo.list_memberships(conn, program_ids=[program.id], status="approved")
        affiliates = {
            a.id: a
            for a in repo.list_affiliates(
                conn, list({m.affiliate_id for m in members} | {c.affiliate_id for c in codes})
            )
        }
    return {
        "program": program,
        "tab": "coupons",
        "coupons": codes,
        "members": [affiliates[m.affiliate_id] for m in members if m.affiliate_id in affiliates],
        "affiliates": affiliates,
        "form": {},
        "error": "",
        **extra,
    }


@router.get("/merchant/programs/{program_id}/coupons", response_class=HTMLResponse)
def coupons_page(request: Request, user: MerchantUser, program_id: int) -> Response:
    """List a program's coupon codes and who owns each."""
    return render(request, "merchant/coupons.html", coupons_context(request, user, program_id))


@router.post("/merchant/programs/{program_id}/coupons", dependencies=[CsrfChecked])
def add_coupon(
    request: Request,
    user: MerchantWriter,
    program_id: int,
    affiliate_id: str = Form(""),
    code: str = Form(""),
) -> Response:
    """Give an approved affiliate a coupon code; orders using it are attributed to them."""
    try:
        with get_state(request).db.write() as conn:
            program = _own_program(conn, user, program_id)
            if not affiliate_id.isdigit():
                raise InvalidField("affiliate_id", "choose an affiliate")
            coupon = catalog.create_coupon(
                conn, program=program, affiliate_id=int(affiliate_id), code=code
            )
            audit.record(
                conn,
                user.ref,
                "coupon.create",
                f"coupon:{coupon.id}",
                code=coupon.code,
                affiliate_id=coupon.affiliate_id,
            )
    except REFUSED as exc:
        form = {"affiliate_id": affiliate_id, "code": code}
        context = coupons_context(request, user, program_id, form=form)
        return _page(request, "merchant/coupons.html", context, exc)
    return see_other(f"/merchant/programs/{program_id}/coupons")


@router.post("/merchant/coupons/{coupon_id}/status", dependencies=[CsrfChecked])
def coupon_status(
    request: Request, user: MerchantWriter, coupon_id: int, status: str = Form(...)
) -> Response:
    """Revoke a coupon (a leaked code stops attributing orders) or reactivate it."""
    with get_state(request).db.write() as conn:
        coupon = repo.get_coupon_by_id(conn, coupon_id)
        if coupon is None:
            raise NotFound("coupon")
        _own_program(conn, user, coupon.program_id)
        promotion.set_coupon_status(conn, coupon, status)
        audit.record(conn, user.ref, f"coupon.{status}", f"coupon:{coupon_id}", code=coupon.code)
    return see_other(f"/merchant/programs/{coupon.program_id}/coupons")


# -- groups ----------------------------------------------------------------------------


def groups_context(request: Request, user: users.User, program_id: int, **extra: Any) -> dict:
    """Build the groups page: base rates, each group's rates and how many members it has."""
    with get_state(request).db.read() as conn:
        program = _own_program(conn, user, program_id)
        sizes = promotion.group_sizes(conn, program.id)
    events = sorted(
        {*program.plan.base.fixed, *(k for g in program.plan.groups.values() for k in g.fixed)}
    )
    groups = [
        {
            "name": name,
            "own": rates,
            "effective": promotion.rate_summary(program, name),
            "members": sizes.get(name, 0),
        }
        for name, rates in sorted(program.plan.groups.items())
    ]
    return {
        "program": program,
        "tab": "groups",
        "base": program.plan.base,
        "events": events,
        "groups": groups,
        "ungrouped": sizes.get("", 0),
        "form": {},
        "error": "",
        **extra,
    }


@router.get("/merchant/programs/{program_id}/groups", response_class=HTMLResponse)
def groups_page(request: Request, user: MerchantUser, program_id: int) -> Response:
    """Show the program's affiliate groups and their own rates."""
    return render(request, "merchant/groups.html", groups_context(request, user, program_id))


@router.post("/merchant/programs/{program_id}/groups", dependencies=[CsrfChecked])
async def save_group(request: Request, user: MerchantWriter, program_id: int) -> Response:
    """Create or change a group's rates (blank fields inherit the base rates)."""
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf"}
    fixed = {k[len("fixed_") :]: v for k, v in form.items() if k.startswith("fixed_")}
    new_event = form.get("new_event", "").strip()
    if new_event and form.get("new_amount", "").strip():
        fixed[new_event] = form["new_amount"]
    try:
        with get_state(request).db.write() as conn:
            program = _own_program(conn, user, program_id)
            promotion.save_group(
                conn,
                program,
                name=form.get("name", ""),
                cps_percent=form.get("cps_percent", ""),
                fixed=fixed,
            )
            audit.record(
                conn,
                user.ref,
                "group.save",
                f"program:{program_id}",
                group=form.get("name", ""),
                cps_percent=form.get("cps_percent", ""),
                fixed={k: v for k, v in fixed.items() if v.strip()},
            )
    except REFUSED as exc:
        context = groups_context(request, user, program_id, form=form)
        return _page(request, "merchant/groups.html", context, exc)
    return see_other(f"/merchant/programs/{program_id}/groups")


@router.post("/merchant/programs/{program_id}/groups/delete", dependencies=[CsrfChecked])
def delete_group(
    request: Request, user: MerchantWriter, program_id: int, name: str = Form(...)
) -> Response:
    """Remove a group; its members go back to the base rates."""
    with get_state(request).db.write() as conn:
        program = _own_program(conn, user, program_id)
        _, moved = promotion.delete_group(conn, program, name)
        audit.record(
            conn, user.ref, "group.delete", f"program:{program_id}", group=name, moved=moved
        )
    return see_other(f"/merchant/programs/{program_id}/groups")


# -- invitations -----------------------------------------------------------------------


def invites_context(request: Request, user: users.User, program_id: int, **extra: Any) -> dict:
    """Build the invitations page: the program's links, their uses and state."""
    state = get_state(request)
    with state.db.read() as conn:
        program = _own_program(conn, user, program_id)
        items = promotion.list_invites(conn, program.id)
    return {
        "program": program,
        "tab": "invites",
        "invites": items,
        "groups": sorted(program.plan.groups),
        "new_link": "",
        "now": utcnow(),
        "form": {},
        "error": "",
        **extra,
    }


@router.get("/merchant/programs/{program_id}/invites", response_class=HTMLResponse)
def invites_page(request: Request, user: MerchantUser, program_id: int) -> Response:
    """List a program's invitation links."""
    return render(request, "merchant/invites.html", invites_context(request, user, program_id))


@router.post("/merchant/programs/{program_id}/invites", dependencies=[CsrfChecked])
def create_invite(
    request: Request,
    user: MerchantWriter,
    program_id: int,
    group: str = Form(""),
    max_uses: str = Form(""),
    expires_days: str = Form(""),
) -> Response:
    """Create an invitation link (shown once: only its hash is stored)."""
    form = {"group": group, "max_uses": max_uses, "expires_days": expires_days}
    state = get_state(request)
    try:
        numbers: dict[str, int | None] = {}
        for key, raw in (("max_uses", max_uses), ("expires_days", expires_days)):
            try:
                numbers[key] = int(raw) if raw.strip() else None
            except ValueError:
                raise InvalidField(key, "must be a whole number") from None
        with state.db.write() as conn:
            program = _own_program(conn, user, program_id)
            token, invite = promotion.create_invite(
                conn, program, group=group, created_by=user.id, **numbers
            )
            audit.record(conn, user.ref, "invite.create", f"invite:{invite.id}", group=group)
    except REFUSED as exc:
        context = invites_context(request, user, program_id, form=form)
        return _page(request, "merchant/invites.html", context, exc)
    link = f"{state.settings.public_url.rstrip('/')}/join/{token}"
    context = invites_context(request, user, program_id, new_link=link)
    return render(request, "merchant/invites.html", context, 201)


@router.post("/merchant/invites/{invite_id}/revoke", dependencies=[CsrfChecked])
def revoke_invite(request: Request, user: MerchantWriter, invite_id: int) -> Response:
    """Stop an invitation link from letting anyone else join."""
    with get_state(request).db.write() as conn:
        invite = promotion.get_invite(conn, invite_id)
        if invite is None:
            raise NotFound("invitation")
        _own_program(conn, user, invite.program_id)
        promotion.revoke_invite(conn, invite)
        audit.record(conn, user.ref, "invite.revoke", f"invite:{invite_id}")
    return see_other(f"/merchant/programs/{invite.program_id}/invites")


def join_context(request: Request, token: str, **extra: Any) -> dict[str, Any]:
    """Build the page an invited affiliate lands on."""
    with get_state(request).db.read() as conn:
        invite = promotion.find_invite(conn, token)
        program = repo.get_program(conn, invite.program_id) if invite else None
    return {
        "invite": invite,
        "program": program,
        "token": token,
        "user": current_user(request),
        "error": "",
        **extra,
    }


@router.get("/join/{token}", response_class=HTMLResponse)
def join_page(request: Request, token: str) -> Response:
    """Show the program an invitation link is for, and how to join it."""
    context = join_context(request, token)
    return render(request, "join.html", context, 200 if context["invite"] else 404)


@router.post("/join/{token}", dependencies=[CsrfChecked])
def join(request: Request, user: AffiliateUser, token: str) -> Response:
    """Join the program of an invitation link, approved, in its group."""
    try:
        with get_state(request).db.write() as conn:
            membership = promotion.accept_invite(conn, token, user.owner_id)
            audit.record(
                conn,
                user.ref,
                "invite.accept",
                f"membership:{membership.id}",
                program_id=membership.program_id,
                group=membership.group,
            )
    except REFUSED as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return render(
            request,
            "join.html",
            join_context(request, token, error=error_text(request, exc)),
            status,
        )
    return see_other(f"/affiliate/links?program={membership.program_id}")


# -- announcements ---------------------------------------------------------------------


def announcements_context(
    request: Request, user: users.User, program_id: int, **extra: Any
) -> dict:
    """Build the announcements page: what the program told its affiliates, and a form."""
    with get_state(request).db.read() as conn:
        program = _own_program(conn, user, program_id)
        items = promotion.list_announcements(conn, [program.id])
        sizes = promotion.group_sizes(conn, program.id)
    return {
        "program": program,
        "tab": "announcements",
        "announcements": items,
        "groups": sorted({*program.plan.groups, *(g for g in sizes if g)}),
        "form": {},
        "error": "",
        **extra,
    }


@router.get("/merchant/programs/{program_id}/announcements", response_class=HTMLResponse)
def announcements_page(request: Request, user: MerchantUser, program_id: int) -> Response:
    """List a program's announcements and post a new one."""
    return render(
        request,
        "merchant/announcements.html",
        announcements_context(request, user, program_id),
    )


@router.post("/merchant/programs/{program_id}/announcements", dependencies=[CsrfChecked])
def post_announcement(
    request: Request,
    user: MerchantWriter,
    program_id: int,
    title: str = Form(""),
    body: str = Form(""),
    group: str = Form(""),
) -> Response:
    """Post a message to every approved affiliate of the program, or to one group."""
    try:
        with get_state(request).db.write() as conn:
            program = _own_program(conn, user, program_id)
            made = promotion.post_announcement(
                conn, program, title=title, body=body, group=group or None, created_by=user.id
            )
            audit.record(
                conn, user.ref, "announcement.post", f"announcement:{made.id}", group=group
            )
    except REFUSED as exc:
        form = {"title": title, "body": body, "group": group}
        context = announcements_context(request, user, program_id, form=form)
        return _page(request, "merchant/announcements.html", context, exc)
    return see_other(f"/merchant/programs/{program_id}/announcements")


@router.get("/affiliate/news", response_class=HTMLResponse)
def news(request: Request, user: AffiliateUser) -> Response:
    """Show the announcements of the affiliate's programs (for all, or for their group)."""
    _ = gettext_for(request)
    with get_state(request).db.read() as conn:
        items = promotion.announcements_for(conn, user.owner_id, limit=100)
        names = {p.id: p.name for p in repo.list_programs(conn)}
    return render(request, "affiliate/news.html", {"announcements": items, "program_names": names})
