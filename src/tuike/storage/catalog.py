"""Repository of the catalog: rows in, domain dataclasses out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from tuike.domain.catalog import (
    Affiliate,
    Channel,
    Coupon,
    Creative,
    Link,
    Membership,
    Merchant,
    Program,
)
from tuike.domain.commission import plan_from_dict
from tuike.domain.fraud import FraudConfig
from tuike.domain.fraud.quality import QualityReason
from tuike.storage import tables as t


def merchant_from_row(row: Row[Any]) -> Merchant:
    """Map a merchants row."""
    return Merchant(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        created_at=row.created_at,
        status=row.status,
    )


def program_from_row(row: Row[Any]) -> Program:
    """Map a programs row."""
    return Program(
        id=row.id,
        public_id=row.public_id,
        merchant_id=row.merchant_id,
        name=row.name,
        currency=row.currency,
        landing_url=row.landing_url,
        fallback_url=row.fallback_url,
        allowed_domains=tuple(row.allowed_domains or ()),
        click_param=row.click_param,
        cookie_days=row.cookie_days,
        lock_days=row.lock_days,
        plan=plan_from_dict(row.commission_plan, row.currency),
        status=row.status,
        require_signature=bool(row.require_signature),
        pixel_pending_review=bool(row.pixel_pending_review),
        fraud=FraudConfig.parse(row.fraud_config),
        category=row.category,
        timezone=row.timezone,
        created_at=row.created_at,
        fee_rate_ppm=row.fee_rate_ppm,
        fee_mode=row.fee_mode,
        override_rate_ppm=row.override_rate_ppm,
    )


def affiliate_from_row(row: Row[Any], channels: Sequence[Channel] = ()) -> Affiliate:
    """Map an affiliates row (with its channels)."""
    return Affiliate(
        id=row.id,
        name=row.name,
        email=row.email,
        status=row.status,
        timezone=row.timezone,
        created_at=row.created_at,
        channels=tuple(channels),
        quality_score=row.quality_score,
        quality_flagged=bool(row.quality_flagged),
        quality_reasons=(
            tuple(QualityReason.parse(r) for r in row.quality_reasons)
            if row.quality_reasons
            else None
        ),
    )


def channel_from_row(row: Row[Any]) -> Channel:
    """Map a channels row."""
    return Channel(
        id=row.id, affiliate_id=row.affiliate_id, kind=row.kind, name=row.name, url=row.url
    )


def membership_from_row(row: Row[Any]) -> Membership:
    """Map a memberships row."""
    return Membership(
        id=row.id,
        program_id=row.program_id,
        affiliate_id=row.affiliate_id,
        status=row.status,
        group=row.group,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def creative_from_row(row: Row[Any]) -> Creative:
    """Map a creatives row."""
    return Creative(
        id=row.id,
        program_id=row.program_id,
        kind=row.kind,
        name=row.name,
        image_url=row.image_url,
        landing_url=row.landing_url,
        width=row.width,
        height=row.height,
        body=row.body,
        status=row.status,
    )


def link_from_row(row: Row[Any]) -> Link:
    """Map a links row."""
    return Link(
        id=row.id,
        code=row.code,
        program_id=row.program_id,
        affiliate_id=row.affiliate_id,
        creative_id=row.creative_id,
        landing_url=row.landing_url,
        subs=(row.sub1, row.sub2, row.sub3, row.sub4, row.sub5),
        status=row.status,
        created_at=row.created_at,
    )


def coupon_from_row(row: Row[Any]) -> Coupon:
    """Map a coupons row."""
    return Coupon(
        id=row.id,
        program_id=row.program_id,
        affiliate_id=row.affiliate_id,
        code=row.code,
        status=row.status,
    )


def get_merchant(conn: Connection, merchant_id: int) -> Merchant | None:
    """Return a merchant by id."""
    row = conn.execute(select(t.merchants).where(t.merchants.c.id == merchant_id)).first()
    return merchant_from_row(row) if row else None


def get_program(conn: Connection, program_id: int) -> Program | None:
    """Return a program by id."""
    row = conn.execute(select(t.programs).where(t.programs.c.id == program_id)).first()
    return program_from_row(row) if row else None


def get_program_by_public_id(conn: Connection, public_id: str) -> Program | None:
    """Return a program by its public id (used by the pixel)."""
    row = conn.execute(select(t.programs).where(t.programs.c.public_id == public_id)).first()
    return program_from_row(row) if row else None


def program_secret(conn: Connection, program_id: int) -> str:
    """Return a program's postback signing secret."""
    return conn.execute(
        select(t.programs.c.postback_secret).where(t.programs.c.id == program_id)
    ).scalar_one()


def list_programs(conn: Connection, merchant_id: int | None = None) -> list[Program]:
    """Return programs, of one merchant or all."""
    stmt = select(t.programs).order_by(t.programs.c.id)
    if merchant_id is not None:
        stmt = stmt.where(t.programs.c.merchant_id == merchant_id)
    return [program_from_row(r) for r in conn.execute(stmt)]


def list_merchants(conn: Connection) -> list[Merchant]:
    """Return every merchant."""
    return [merchant_from_row(r) for r in conn.execute(select(t.merchants).order_by("id"))]


def get_affiliate(conn: Connection, affiliate_id: int) -> Affiliate | None:
    """Return an affiliate with its channels."""
    row = conn.execute(select(t.affiliates).where(t.affiliates.c.id == affiliate_id)).first()
    if row is None:
        return None
    chans = conn.execute(
        select(t.channels).where(t.channels.c.affiliate_id == affiliate_id).order_by("id")
    )
    return affiliate_from_row(row, [channel_from_row(c) for c in chans])


def list_affiliates(
    conn: Connection, ids: Sequence[int] | None = None, *, with_channels: bool = False
) -> list[Affiliate]:
    """Return affiliates, all or those with the given ids (channels in one more query)."""
    stmt = select(t.affiliates).order_by(t.affiliates.c.id)
    if ids is not None:
        stmt = stmt.where(t.affiliates.c.id.in_(list(ids)))
    rows = conn.execute(stmt).all()
    if not with_channels:
        return [affiliate_from_row(r) for r in rows]
    chans: dict[int, list[Channel]] = {}
    query = select(t.channels).order_by(t.channels.c.id)
    if ids is not None:
        query = query.where(t.channels.c.affiliate_id.in_(list(ids)))
    for c in conn.execute(query):
        chans.setdefault(c.affiliate_id, []).append(channel_from_row(c))
    return [affiliate_from_row(r, chans.get(r.id, ())) for r in rows]


def channels_by_affiliate(
    conn: Connection, affiliate_id: int | None = None
) -> dict[int, list[tuple[str, str]]]:
    """Return affiliate id -> its channels' (kind, url), of one affiliate or of all."""
    query = select(t.channels.c.affiliate_id, t.channels.c.kind, t.channels.c.url)
    if affiliate_id is not None:
        query = query.where(t.channels.c.affiliate_id == affiliate_id)
    out: dict[int, list[tuple[str, str]]] = {}
    for row in conn.execute(query.order_by(t.channels.c.id)):
        out.setdefault(row.affiliate_id, []).append((row.kind, row.url))
    return out


def get_membership(conn: Connection, program_id: int, affiliate_id: int) -> Membership | None:
    """Return an affiliate's membership in a program."""
    row = conn.execute(
        select(t.memberships).where(
            t.memberships.c.program_id == program_id,
            t.memberships.c.affiliate_id == affiliate_id,
        )
    ).first()
    return membership_from_row(row) if row else None


def get_membership_by_id(conn: Connection, membership_id: int) -> Membership | None:
    """Return a membership by id."""
    row = conn.execute(select(t.memberships).where(t.memberships.c.id == membership_id)).first()
    return membership_from_row(row) if row else None


def list_memberships(
    conn: Connection,
    *,
    program_ids: Sequence[int] | None = None,
    affiliate_id: int | None = None,
    status: str | None = None,
) -> list[Membership]:
    """Return memberships filtered by programs, affiliate and status."""
    stmt = select(t.memberships).order_by(t.memberships.c.id)
    if program_ids is not None:
        stmt = stmt.where(t.memberships.c.program_id.in_(list(program_ids)))
    if affiliate_id is not None:
        stmt = stmt.where(t.memberships.c.affiliate_id == affiliate_id)
    if status is not None:
        stmt = stmt.where(t.memberships.c.status == status)
    return [membership_from_row(r) for r in conn.execute(stmt)]


def get_link(conn: Connection, link_id: int) -> Link | None:
    """Return a link by id."""
    row = conn.execute(select(t.links).where(t.links.c.id == link_id)).first()
    return link_from_row(row) if row else None


def get_link_by_code(conn: Connection, code: str) -> Link | None:
    """Return a link by its short code."""
    row = conn.execute(select(t.links).where(t.links.c.code == code)).first()
    return link_from_row(row) if row else None


def list_links(
    conn: Connection, *, affiliate_id: int | None = None, program_ids: Sequence[int] | None = None
) -> list[Link]:
    """Return links of an affiliate and/or of some programs."""
    stmt = select(t.links).order_by(t.links.c.id)
    if affiliate_id is not None:
        stmt = stmt.where(t.links.c.affiliate_id == affiliate_id)
    if program_ids is not None:
        stmt = stmt.where(t.links.c.program_id.in_(list(program_ids)))
    return [link_from_row(r) for r in conn.execute(stmt)]


def recent_links(conn: Connection, limit: int) -> list[Link]:
    """Return the newest links, newest first."""
    rows = conn.execute(select(t.links).order_by(t.links.c.id.desc()).limit(limit))
    return [link_from_row(r) for r in rows]


def get_creative(conn: Connection, creative_id: int) -> Creative | None:
    """Return a creative by id."""
    row = conn.execute(select(t.creatives).where(t.creatives.c.id == creative_id)).first()
    return creative_from_row(row) if row else None


def list_creatives(
    conn: Connection, program_id: int, *, active_only: bool = False
) -> list[Creative]:
    """Return a program's creatives (only the active ones for the affiliates' gallery)."""
    stmt = select(t.creatives).where(t.creatives.c.program_id == program_id).order_by("id")
    if active_only:
        stmt = stmt.where(t.creatives.c.status == "active")
    return [creative_from_row(r) for r in conn.execute(stmt)]


def get_coupon(conn: Connection, program_id: int, code: str) -> Coupon | None:
    """Return a program's coupon by code (case-insensitive: codes are stored upper case)."""
    row = conn.execute(
        select(t.coupons).where(
            t.coupons.c.program_id == program_id, t.coupons.c.code == code.strip().upper()
        )
    ).first()
    return coupon_from_row(row) if row else None


def get_coupon_by_id(conn: Connection, coupon_id: int) -> Coupon | None:
    """Return a coupon by id."""
    row = conn.execute(select(t.coupons).where(t.coupons.c.id == coupon_id)).first()
    return coupon_from_row(row) if row else None


def list_coupons(
    conn: Connection, *, program_ids: Sequence[int] | None = None, affiliate_id: int | None = None
) -> list[Coupon]:
    """Return coupons of some programs and/or of an affiliate."""
    stmt = select(t.coupons).order_by(t.coupons.c.id)
    if program_ids is not None:
        stmt = stmt.where(t.coupons.c.program_id.in_(list(program_ids)))
    if affiliate_id is not None:
        stmt = stmt.where(t.coupons.c.affiliate_id == affiliate_id)
    return [coupon_from_row(r) for r in conn.execute(stmt)]


def has_merchants(conn: Connection) -> bool:
    """Tell whether any merchant exists (the database is not empty)."""
    return conn.execute(select(t.merchants.c.id).limit(1)).first() is not None
