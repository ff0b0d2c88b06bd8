"""Provisioning: merchants, programs, affiliates, memberships, creatives, links, coupons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from tuike.domain.access import AFFILIATE, MERCHANT, OPERATOR, Principal
from tuike.domain.errors import Forbidden, InvalidField, NotFound
from tuike.services import catalog as svc
from tuike.services import creatives
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import (
    IdPath,
    PrincipalDep,
    StateDep,
    managed_program,
    report_scope,
    visible_program,
)
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import (
    AffiliateIn,
    AffiliateOut,
    ChannelIn,
    CouponIn,
    CouponOut,
    CreativeIn,
    CreativeOut,
    LinkIn,
    LinkOut,
    LinkPatch,
    MembershipIn,
    MembershipOut,
    MembershipPatch,
    MerchantIn,
    MerchantOut,
    ProgramIn,
    ProgramOut,
    ProgramPatch,
)

router = APIRouter(route_class=IdempotentRoute)


@router.post("/merchants", status_code=201, response_model=MerchantOut, tags=["merchants"])
def create_merchant(body: MerchantIn, who: PrincipalDep, state: StateDep) -> MerchantOut:
    """Create a merchant (operator)."""
    who.require(OPERATOR)
    with state.db.write() as conn:
        return MerchantOut.of(
            svc.create_merchant(
                conn,
                name=body.name,
                timezone=body.timezone or state.settings.default_timezone,
            )
        )


@router.get("/merchants", response_model=list[MerchantOut], tags=["merchants"])
def list_merchants(who: PrincipalDep, state: StateDep) -> list[MerchantOut]:
    """List the merchants the caller may see."""
    who.require(OPERATOR, MERCHANT)
    with state.db.read() as conn:
        merchants = repo.list_merchants(conn)
    return [MerchantOut.of(m) for m in merchants if who.may_manage_merchant(m.id)]


@router.post("/programs", status_code=201, response_model=ProgramOut, tags=["programs"])
def create_program(body: ProgramIn, who: PrincipalDep, state: StateDep) -> ProgramOut:
    """Create a program for a merchant (merchant or operator)."""
    who.require(OPERATOR, MERCHANT)
    merchant_id = body.merchant_id if who.role == OPERATOR else who.owner_id
    if merchant_id is None:
        raise InvalidField("merchant_id", "is required with an operator key")
    if not who.may_manage_merchant(merchant_id):
        raise NotFound("merchant")
    fields = body.model_dump(exclude={"merchant_id", "currency"}, exclude_none=True)
    _only_the_operator_sets_fees(who, fields)
    with state.db.write() as conn:
        program = svc.create_program(
            conn, merchant_id=merchant_id, currency=body.currency, **fields
        )
        secret = repo.program_secret(conn, program.id)
    state.links.invalidate()
    return ProgramOut.of(program, secret, manager=True)


@router.get("/programs", response_model=list[ProgramOut], tags=["programs"])
def list_programs(who: PrincipalDep, state: StateDep) -> list[ProgramOut]:
    """List programs: a merchant's own, every active one for affiliates, all for operators."""
    with state.db.read() as conn:
        if who.role == MERCHANT:
            programs = repo.list_programs(conn, merchant_id=who.owner_id)
            return [
                ProgramOut.of(p, repo.program_secret(conn, p.id), manager=True) for p in programs
            ]
        programs = repo.list_programs(conn)
    if who.role == OPERATOR:
        return [ProgramOut.of(p, manager=True) for p in programs]
    if who.role == AFFILIATE:
        return [ProgramOut.of(p) for p in programs if p.active]
    return [ProgramOut.of(p) for p in programs if p.id == who.owner_id]


@router.get("/programs/{program_id}", response_model=ProgramOut, tags=["programs"])
def get_program(program_id: IdPath, who: PrincipalDep, state: StateDep) -> ProgramOut:
    """Return one program."""
    with state.db.read() as conn:
        program = visible_program(conn, who, program_id)
        owner = who.may_manage_merchant(program.merchant_id)
        secret = repo.program_secret(conn, program.id) if owner else None
        return ProgramOut.of(program, secret, manager=owner)


@router.patch("/programs/{program_id}", response_model=ProgramOut, tags=["programs"])
def update_program(
    program_id: IdPath, body: ProgramPatch, who: PrincipalDep, state: StateDep
) -> ProgramOut:
    """Change a program's settings, plan or status (its merchant or the operator)."""
    with state.db.write() as conn:
        program = managed_program(conn, who, program_id)
        fields = body.model_dump(exclude_unset=True)
        _only_the_operator_sets_fees(who, fields)
        updated = svc.update_program(conn, program, **fields)
        secret = repo.program_secret(conn, program.id)
    state.links.invalidate()
    return ProgramOut.of(updated, secret, manager=True)


def _only_the_operator_sets_fees(who: Principal, fields: dict[str, Any]) -> None:
    """The service fee is the platform's revenue: a merchant cannot set its own."""
    if who.role != OPERATOR and ({"fee_rate", "fee_mode", "override_rate"} & fields.keys()):
        raise Forbidden("only the operator sets a program's service fee and override")


@router.post("/affiliates", status_code=201, response_model=AffiliateOut, tags=["affiliates"])
def create_affiliate(body: AffiliateIn, who: PrincipalDep, state: StateDep) -> AffiliateOut:
    """Create an affiliate with their channels (operator)."""
    who.require(OPERATOR)
    with state.db.write() as conn:
        affiliate = svc.create_affiliate(
            conn,
            name=body.name,
            email=body.email,
            timezone=body.timezone or state.settings.default_timezone,
            channels=[c.model_dump() for c in body.channels],
            recruited_by=body.recruited_by,
        )
    return AffiliateOut.of(affiliate, private=True, quality=True)


@router.get("/affiliates", response_model=list[AffiliateOut], tags=["affiliates"])
def list_affiliates(who: PrincipalDep, state: StateDep) -> list[AffiliateOut]:
    """List affiliates: all (operator), those in the merchant's programs, or oneself."""
    with state.db.read() as conn:
        if who.role == OPERATOR:
            return [
                AffiliateOut.of(a, private=True, quality=True) for a in repo.list_affiliates(conn)
            ]
        if who.role == AFFILIATE:
            # An affiliate never sees its quality score: it would learn how to game the rules.
            me = repo.get_affiliate(conn, who.owner_id or -1)
            return [AffiliateOut.of(me, private=True, quality=False)] if me else []
        scope = report_scope(conn, who)
        ids = {m.affiliate_id for m in repo.list_memberships(conn, program_ids=scope.program_ids)}
        quality = who.role == MERCHANT
        return [
            AffiliateOut.of(a, private=False, quality=quality, programs=scope.program_ids or ())
            for a in repo.list_affiliates(conn, list(ids))
        ]


@router.get("/affiliates/{affiliate_id}", response_model=AffiliateOut, tags=["affiliates"])
def get_affiliate(affiliate_id: IdPath, who: PrincipalDep, state: StateDep) -> AffiliateOut:
    """Return one affiliate (themselves, the operator, or a merchant they work with)."""
    with state.db.read() as conn:
        affiliate = repo.get_affiliate(conn, affiliate_id)
        if affiliate is None:
            raise NotFound("affiliate")
        if who.may_act_as_affiliate(affiliate_id):
            return AffiliateOut.of(affiliate, private=True, quality=who.role == OPERATOR)
        if who.role == MERCHANT:
            scope = report_scope(conn, who)
            if repo.list_memberships(
                conn, program_ids=scope.program_ids, affiliate_id=affiliate_id
            ):
                return AffiliateOut.of(
                    affiliate, private=False, quality=True, programs=scope.program_ids or ()
                )
    raise NotFound("affiliate")


@router.post(
    "/affiliates/{affiliate_id}/channels",
    status_code=201,
    response_model=AffiliateOut,
    tags=["affiliates"],
)
def add_channel(
    affiliate_id: IdPath, body: ChannelIn, who: PrincipalDep, state: StateDep
) -> AffiliateOut:
    """Add a promotion channel to an affiliate (themselves or the operator)."""
    if not who.may_act_as_affiliate(affiliate_id):
        raise NotFound("affiliate")
    with state.db.write() as conn:
        if repo.get_affiliate(conn, affiliate_id) is None:
            raise NotFound("affiliate")
        svc.add_channel(conn, affiliate_id, kind=body.kind, name=body.name, url=body.url)
        affiliate = repo.get_affiliate(conn, affiliate_id)
    assert affiliate is not None
    return AffiliateOut.of(affiliate, private=True, quality=who.role == OPERATOR)


@router.post(
    "/programs/{program_id}/memberships",
    status_code=201,
    response_model=MembershipOut,
    tags=["memberships"],
)
def apply(
    program_id: IdPath, body: MembershipIn, who: PrincipalDep, state: StateDep
) -> MembershipOut:
    """Apply to a program (an affiliate for themselves, or the operator for one)."""
    who.require(AFFILIATE, OPERATOR)
    affiliate_id = who.owner_id if who.role == AFFILIATE else body.affiliate_id
    if affiliate_id is None:
        raise InvalidField("affiliate_id", "is required with an operator key")
    with state.db.write() as conn:
        program = visible_program(conn, who, program_id)
        return MembershipOut.of(
            svc.apply_to_program(conn, program=program, affiliate_id=affiliate_id)
        )


@router.get("/memberships", response_model=list[MembershipOut], tags=["memberships"])
def list_memberships(
    who: PrincipalDep,
    state: StateDep,
    status: str | None = Query(None, description="applied | approved | rejected | banned"),
    program_id: int | None = None,
) -> list[MembershipOut]:
    """List memberships visible to the caller."""
    with state.db.read() as conn:
        scope = report_scope(conn, who)
        ids = scope.program_ids
        if program_id is not None:
            ids = tuple(i for i in ids if i == program_id) if ids is not None else (program_id,)
        rows = repo.list_memberships(
            conn, program_ids=ids, affiliate_id=scope.affiliate_id, status=status
        )
    return [MembershipOut.of(m) for m in rows]


@router.patch("/memberships/{membership_id}", response_model=MembershipOut, tags=["memberships"])
def decide(
    membership_id: IdPath, body: MembershipPatch, who: PrincipalDep, state: StateDep
) -> MembershipOut:
    """Approve, reject or ban an affiliate in a program, and set their commission group."""
    with state.db.write() as conn:
        membership = repo.get_membership_by_id(conn, membership_id)
        if membership is None:
            raise NotFound("membership")
        managed_program(conn, who, membership.program_id)
        if body.status not in ("approved", "rejected", "banned"):
            raise InvalidField("status", "must be approved, rejected or banned")
        updated = svc.decide_membership(conn, membership, status=body.status, group=body.group)
    state.links.invalidate()
    return MembershipOut.of(updated)


@router.post(
    "/programs/{program_id}/creatives",
    status_code=201,
    response_model=CreativeOut,
    tags=["creatives"],
)
def create_creative(
    program_id: IdPath, body: CreativeIn, who: PrincipalDep, state: StateDep
) -> CreativeOut:
    """Add a creative to a program: a text link or HTML snippet (``body``, sanitised), or a
    banner or QR image by URL (upload banner files to ``/programs/{id}/banners``)."""
    with state.db.write() as conn:
        program = managed_program(conn, who, program_id)
        fields = body.model_dump(exclude={"body"})
        if body.kind == "text" and body.body is not None:
            made = creatives.add_text_link(
                conn, program, name=body.name, text=body.body, landing_url=body.landing_url
            )
        elif body.kind == "html":
            made = creatives.add_snippet(
                conn, program, name=body.name, markup=body.body or "", landing_url=body.landing_url
            )
        else:
            made = svc.create_creative(conn, program=program, **fields)
    return CreativeOut.of(made, state.settings.public_url)


@router.get(
    "/programs/{program_id}/creatives", response_model=list[CreativeOut], tags=["creatives"]
)
def list_creatives(program_id: IdPath, who: PrincipalDep, state: StateDep) -> list[CreativeOut]:
    """List a program's creatives."""
    with state.db.read() as conn:
        visible_program(conn, who, program_id)
        items = repo.list_creatives(conn, program_id, active_only=who.role == AFFILIATE)
    return [CreativeOut.of(c, state.settings.public_url) for c in items]


@router.post("/links", status_code=201, response_model=LinkOut, tags=["links"])
def create_link(body: LinkIn, who: PrincipalDep, state: StateDep) -> LinkOut:
    """Create a tracking link (with optional deep link, creative and sub ids)."""
    who.require(AFFILIATE, OPERATOR)
    affiliate_id = who.owner_id if who.role == AFFILIATE else body.affiliate_id
    if affiliate_id is None:
        raise InvalidField("affiliate_id", "is required with an operator key")
    with state.db.write() as conn:
        program = visible_program(conn, who, body.program_id)
        link = svc.create_link(
            conn,
            program=program,
            affiliate_id=affiliate_id,
            landing_url=body.landing_url,
            creative_id=body.creative_id,
            subs=[body.sub1, body.sub2, body.sub3, body.sub4, body.sub5],
        )
    return LinkOut.of(link, state.settings.public_url)


@router.get("/links", response_model=list[LinkOut], tags=["links"])
def list_links(who: PrincipalDep, state: StateDep) -> list[LinkOut]:
    """List links: an affiliate's own, those of a merchant's programs, or all."""
    with state.db.read() as conn:
        scope = report_scope(conn, who)
        links = repo.list_links(
            conn, affiliate_id=scope.affiliate_id, program_ids=scope.program_ids
        )
    return [LinkOut.of(link, state.settings.public_url) for link in links]


@router.patch("/links/{link_id}", response_model=LinkOut, tags=["links"])
def update_link(link_id: IdPath, body: LinkPatch, who: PrincipalDep, state: StateDep) -> LinkOut:
    """Pause or resume a link (its affiliate, the program's merchant, or the operator)."""
    with state.db.write() as conn:
        link = repo.get_link(conn, link_id)
        if link is None:
            raise NotFound("link")
        program = repo.get_program(conn, link.program_id)
        assert program is not None
        if not (
            who.may_act_as_affiliate(link.affiliate_id)
            or who.may_manage_merchant(program.merchant_id)
        ):
            raise NotFound("link")
        # The program's side (merchant or operator) outranks the link's affiliate.
        by = "affiliate" if who.role == AFFILIATE else who.role
        updated = svc.set_link_status(conn, link, body.status, by=by)
    state.links.invalidate()
    return LinkOut.of(updated, state.settings.public_url)


@router.post("/coupons", status_code=201, response_model=CouponOut, tags=["coupons"])
def create_coupon(body: CouponIn, who: PrincipalDep, state: StateDep) -> CouponOut:
    """Give an affiliate a coupon code in a program (its merchant or the operator)."""
    with state.db.write() as conn:
        program = managed_program(conn, who, body.program_id)
        return CouponOut.of(
            svc.create_coupon(conn, program=program, affiliate_id=body.affiliate_id, code=body.code)
        )


@router.get("/coupons", response_model=list[CouponOut], tags=["coupons"])
def list_coupons(who: PrincipalDep, state: StateDep) -> list[CouponOut]:
    """List coupons visible to the caller."""
    if who.role == "program":
        raise Forbidden("program keys only send conversions")
    with state.db.read() as conn:
        scope = report_scope(conn, who)
        coupons = repo.list_coupons(
            conn, program_ids=scope.program_ids, affiliate_id=scope.affiliate_id
        )
    return [CouponOut.of(c) for c in coupons]
