"""Banner uploads, creative and coupon status, invitation links and announcements: the API
side of the merchant console's promotion tools (same services as the portal)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, UploadFile

from tuike.domain.access import AFFILIATE, MERCHANT, OPERATOR
from tuike.domain.errors import Forbidden, NotFound
from tuike.services import creatives, promotion
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import IdPath, PrincipalDep, StateDep, managed_program
from tuike.web.api.v1.schemas import (
    AnnouncementIn,
    AnnouncementOut,
    CouponOut,
    CreativeOut,
    InviteAccept,
    InviteIn,
    InviteOut,
    MembershipOut,
    StatusPatch,
)

# Not an IdempotentRoute: uploads are multipart, and an invitation's token is shown once.
router = APIRouter()


def _may_manage(program_id: IdPath, who: PrincipalDep, state: StateDep) -> None:
    """Refuse a caller who does not run the program before the upload is even read."""
    with state.db.read() as conn:
        managed_program(conn, who, program_id)


@router.post(
    "/programs/{program_id}/banners",
    status_code=201,
    response_model=CreativeOut,
    tags=["creatives"],
    dependencies=[Depends(_may_manage)],
)
async def upload_banner(
    program_id: IdPath,
    who: PrincipalDep,
    state: StateDep,
    name: str = Form(...),
    file: UploadFile = File(...),
    landing_url: str | None = Form(None),
    width: int | None = Form(None),
    height: int | None = Form(None),
) -> CreativeOut:
    """Upload a banner (PNG, JPEG, GIF or WebP; size checked) as multipart form data."""
    limit = state.settings.banner_max_bytes
    data = await file.read(limit + 1)
    with state.db.write() as conn:
        program = managed_program(conn, who, program_id)
        made = creatives.add_banner(
            conn,
            program,
            name=name,
            data=data,
            max_bytes=limit,
            landing_url=landing_url,
            width=width,
            height=height,
        )
    return CreativeOut.of(made, state.settings.public_url)


@router.patch("/creatives/{creative_id}", response_model=CreativeOut, tags=["creatives"])
def update_creative(
    creative_id: IdPath, body: StatusPatch, who: PrincipalDep, state: StateDep
) -> CreativeOut:
    """Archive a creative (it leaves the gallery; its links keep working) or restore it."""
    with state.db.write() as conn:
        creative = repo.get_creative(conn, creative_id)
        if creative is None:
            raise NotFound("creative")
        managed_program(conn, who, creative.program_id)
        updated = creatives.set_status(conn, creative, body.status)
    return CreativeOut.of(updated, state.settings.public_url)


@router.patch("/coupons/{coupon_id}", response_model=CouponOut, tags=["coupons"])
def update_coupon(
    coupon_id: IdPath, body: StatusPatch, who: PrincipalDep, state: StateDep
) -> CouponOut:
    """Revoke a coupon (orders using it are no longer attributed) or reactivate it."""
    with state.db.write() as conn:
        coupon = repo.get_coupon_by_id(conn, coupon_id)
        if coupon is None:
            raise NotFound("coupon")
        managed_program(conn, who, coupon.program_id)
        return CouponOut.of(promotion.set_coupon_status(conn, coupon, body.status))


def _invite_out(invite: promotion.Invite, url: str | None = None) -> InviteOut:
    return InviteOut(
        id=invite.id,
        program_id=invite.program_id,
        group=invite.group,
        max_uses=invite.max_uses,
        uses=invite.uses,
        expires_at=invite.expires_at,
        revoked_at=invite.revoked_at,
        created_at=invite.created_at,
        url=url,
    )


@router.post(
    "/programs/{program_id}/invites",
    status_code=201,
    response_model=InviteOut,
    tags=["invitations"],
)
def create_invite(
    program_id: IdPath, body: InviteIn, who: PrincipalDep, state: StateDep
) -> InviteOut:
    """Create an invitation link; its URL is in this answer only (just a hash is stored)."""
    with state.db.write() as conn:
        program = managed_program(conn, who, program_id)
        token, invite = promotion.create_invite(
            conn,
            program,
            group=body.group,
            max_uses=body.max_uses,
            expires_days=body.expires_days,
        )
    return _invite_out(invite, f"{state.settings.public_url.rstrip('/')}/join/{token}")


@router.get("/programs/{program_id}/invites", response_model=list[InviteOut], tags=["invitations"])
def list_invites(program_id: IdPath, who: PrincipalDep, state: StateDep) -> list[InviteOut]:
    """List a program's invitation links (without their tokens)."""
    with state.db.read() as conn:
        managed_program(conn, who, program_id)
        return [_invite_out(i) for i in promotion.list_invites(conn, program_id)]


@router.post("/invites/{invite_id}/revoke", response_model=InviteOut, tags=["invitations"])
def revoke_invite(invite_id: IdPath, who: PrincipalDep, state: StateDep) -> InviteOut:
    """Stop an invitation link from letting anyone else join."""
    with state.db.write() as conn:
        invite = promotion.get_invite(conn, invite_id)
        if invite is None:
            raise NotFound("invitation")
        managed_program(conn, who, invite.program_id)
        promotion.revoke_invite(conn, invite)
        updated = promotion.get_invite(conn, invite_id)
    assert updated is not None
    return _invite_out(updated)


@router.post("/invites/accept", response_model=MembershipOut, tags=["invitations"])
def accept_invite(body: InviteAccept, who: PrincipalDep, state: StateDep) -> MembershipOut:
    """Join the program of an invitation token, approved, in its group (affiliate keys)."""
    who.require(AFFILIATE)
    assert who.owner_id is not None
    with state.db.write() as conn:
        membership = promotion.accept_invite(conn, body.token, who.owner_id)
    state.links.invalidate()
    return MembershipOut.of(membership)


def _announcement_out(a: promotion.Announcement) -> AnnouncementOut:
    return AnnouncementOut(
        id=a.id,
        program_id=a.program_id,
        group=a.group,
        title=a.title,
        body=a.body,
        created_at=a.created_at,
    )


@router.post(
    "/programs/{program_id}/announcements",
    status_code=201,
    response_model=AnnouncementOut,
    tags=["announcements"],
)
def post_announcement(
    program_id: IdPath, body: AnnouncementIn, who: PrincipalDep, state: StateDep
) -> AnnouncementOut:
    """Post a message to every approved affiliate of a program, or to one group."""
    with state.db.write() as conn:
        program = managed_program(conn, who, program_id)
        made = promotion.post_announcement(
            conn, program, title=body.title, body=body.body, group=body.group
        )
    return _announcement_out(made)


@router.get("/announcements", response_model=list[AnnouncementOut], tags=["announcements"])
def list_announcements(who: PrincipalDep, state: StateDep) -> list[AnnouncementOut]:
    """An affiliate's news (their programs, their group), or a merchant's posts, or all."""
    with state.db.read() as conn:
        if who.role == AFFILIATE:
            assert who.owner_id is not None
            items = promotion.announcements_for(conn, who.owner_id, limit=200)
        elif who.role in (MERCHANT, OPERATOR):
            programs = repo.list_programs(
                conn, merchant_id=who.owner_id if who.role == MERCHANT else None
            )
            items = promotion.list_announcements(conn, [p.id for p in programs])
        else:
            raise Forbidden("program keys only send conversions")
    return [_announcement_out(a) for a in items]
