"""How merchants work their affiliates: commission groups, invitation links, announcements,
and coupon revocation.

An affiliate group is a named layer of rates in the program's commission plan
(``plan.groups``) plus the ``group`` of each membership; this module edits both together.
An invitation link carries a random token (only its SHA-256 is stored): an affiliate who
opens it joins the program approved, in the link's group, while the link has uses left.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from tuike.domain.catalog import Coupon, Membership, Program
from tuike.domain.commission import plan_to_dict
from tuike.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from tuike.services import catalog
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.storage import tables as t

GROUP_NAME_MAX = 40
INVITE_MAX_DAYS = 365


@dataclass(frozen=True, slots=True)
class Invite:
    """An invitation link of a program (the token itself is only known at creation)."""

    id: int
    program_id: int
    group: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    def usable(self, now: datetime) -> bool:
        """Tell whether the link still lets affiliates join."""
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now)
            and (self.max_uses is None or self.uses < self.max_uses)
        )


@dataclass(frozen=True, slots=True)
class Announcement:
    """A message from a merchant to a program's affiliates (all, or one group)."""

    id: int
    program_id: int
    group: str | None
    title: str
    body: str
    created_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _group_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > GROUP_NAME_MAX or not name.isprintable():
        raise InvalidField("group", f"must be 1 to {GROUP_NAME_MAX} printable characters")
    return name


# -- groups ----------------------------------------------------------------------------


def group_sizes(conn: Connection, program_id: int) -> dict[str, int]:
    """Return how many approved affiliates each group of a program has ("" = no group)."""
    m = t.memberships
    rows = conn.execute(
        select(m.c.group, func.count())
        .where(m.c.program_id == program_id, m.c.status == "approved")
        .group_by(m.c.group)
    )
    return {row[0]: row[1] for row in rows}


def save_group(
    conn: Connection,
    program: Program,
    *,
    name: str,
    cps_percent: str = "",
    fixed: dict[str, str] | None = None,
) -> Program:
    """Create or change a group's rates; a blank value inherits the program's base rate."""
    name = _group_name(name)
    rates: dict[str, Any] = {}
    if (cps_percent or "").strip():
        rates["cps_percent"] = cps_percent.strip()
    amounts = {k: v.strip() for k, v in (fixed or {}).items() if (v or "").strip()}
    if amounts:
        rates["fixed"] = amounts
    if not rates:
        raise InvalidField("rates", "give the group at least one rate of its own")
    plan = plan_to_dict(program.plan)
    old = plan.get("groups", {}).get(name, {})
    if "category_percent" in old:
        rates["category_percent"] = old["category_percent"]
    plan.setdefault("groups", {})[name] = rates
    return catalog.update_program(conn, program, commission_plan=plan)


def delete_group(conn: Connection, program: Program, name: str) -> tuple[Program, int]:
    """Remove a group's rates and move its members back to the base rates."""
    plan = plan_to_dict(program.plan)
    if name not in plan.get("groups", {}):
        raise NotFound("group")
    del plan["groups"][name]
    if not plan["groups"]:
        del plan["groups"]
    updated = catalog.update_program(conn, program, commission_plan=plan)
    moved = conn.execute(
        update(t.memberships)
        .where(t.memberships.c.program_id == program.id, t.memberships.c.group == name)
        .values(group="", updated_at=utcnow())
    ).rowcount
    catalog.bump_version(conn)
    return updated, moved


def rate_summary(program: Program, group: str) -> dict[str, Decimal | None]:
    """Return a group's effective rates: the percent and every fixed amount."""
    rates = program.plan.rates_for(group)
    out: dict[str, Decimal | None] = {"cps_percent": rates.cps_percent}
    out.update(rates.fixed)
    return out


# -- invitations -----------------------------------------------------------------------


def _invite(row: Any) -> Invite:
    return Invite(
        id=row.id,
        program_id=row.program_id,
        group=row.group,
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_at=row.created_at,
    )


def create_invite(
    conn: Connection,
    program: Program,
    *,
    group: str = "",
    max_uses: int | None = None,
    expires_days: int | None = None,
    created_by: int | None = None,
) -> tuple[str, Invite]:
    """Create an invitation link; return its token (shown once) and the stored invite."""
    if group:
        group = _group_name(group)
        if group not in program.plan.groups:
            raise InvalidField("group", "is not a group of this program")
    if max_uses is not None and not 1 <= max_uses <= 100_000:
        raise InvalidField("max_uses", "must be 1 to 100,000")
    if expires_days is not None and not 1 <= expires_days <= INVITE_MAX_DAYS:
        raise InvalidField("expires_days", f"must be 1 to {INVITE_MAX_DAYS} days")
    now = utcnow()
    token = secrets.token_urlsafe(24)
    new_id = conn.execute(
        insert(t.program_invites).values(
            program_id=program.id,
            token_hash=_hash(token),
            group=group,
            max_uses=max_uses,
            uses=0,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
            created_by=created_by,
            created_at=now,
        )
    ).inserted_primary_key[0]
    invite = get_invite(conn, new_id)
    assert invite is not None
    return token, invite


def get_invite(conn: Connection, invite_id: int) -> Invite | None:
    """Return an invite by id."""
    row = conn.execute(select(t.program_invites).where(t.program_invites.c.id == invite_id)).first()
    return _invite(row) if row else None


def list_invites(conn: Connection, program_id: int) -> list[Invite]:
    """Return a program's invitation links, newest first."""
    rows = conn.execute(
        select(t.program_invites)
        .where(t.program_invites.c.program_id == program_id)
        .order_by(t.program_invites.c.id.desc())
    )
    return [_invite(r) for r in rows]


def find_invite(conn: Connection, token: str) -> Invite | None:
    """Return the usable invite of a token, or None (unknown, revoked, expired, used up)."""
    if not token or len(token) > 100:
        return None
    row = conn.execute(
        select(t.program_invites).where(t.program_invites.c.token_hash == _hash(token))
    ).first()
    if row is None:
        return None
    invite = _invite(row)
    return invite if invite.usable(utcnow()) else None


def revoke_invite(conn: Connection, invite: Invite) -> None:
    """Stop an invitation link from letting anyone else join."""
    conn.execute(
        update(t.program_invites)
        .where(t.program_invites.c.id == invite.id, t.program_invites.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def accept_invite(conn: Connection, token: str, affiliate_id: int) -> Membership:
    """Join the invite's program, approved and in its group, using up one of its uses.

    An affiliate already approved keeps their membership and uses nothing; one banned from
    the program cannot come back through a link.
    """
    invite = find_invite(conn, token)
    if invite is None:
        raise NotFound("invitation")
    program = repo.get_program(conn, invite.program_id)
    if program is None or program.status != "active":
        raise Conflict("the program is not accepting affiliates")
    membership = repo.get_membership(conn, program.id, affiliate_id)
    if membership is not None and membership.status == "approved":
        return membership
    if membership is not None and membership.status == "banned":
        raise Forbidden("you are banned from this program")
    now = utcnow()
    pi = t.program_invites.c
    used = conn.execute(
        update(t.program_invites)
        .where(
            pi.id == invite.id,
            pi.revoked_at.is_(None),
            or_(pi.max_uses.is_(None), pi.uses < pi.max_uses),
            or_(pi.expires_at.is_(None), pi.expires_at > now),
        )
        .values(uses=pi.uses + 1)
    ).rowcount
    if used != 1:
        raise NotFound("invitation")
    if membership is None:
        membership = catalog.apply_to_program(conn, program=program, affiliate_id=affiliate_id)
    return catalog.decide_membership(conn, membership, status="approved", group=invite.group)


# -- announcements ---------------------------------------------------------------------


def _announcement(row: Any) -> Announcement:
    return Announcement(
        id=row.id,
        program_id=row.program_id,
        group=row.group,
        title=row.title,
        body=row.body,
        created_at=row.created_at,
    )


def post_announcement(
    conn: Connection,
    program: Program,
    *,
    title: str,
    body: str,
    group: str | None = None,
    created_by: int | None = None,
) -> Announcement:
    """Post a message to every approved affiliate of a program, or to one group."""
    title = " ".join((title or "").split())
    body = (body or "").strip()
    if not title or len(title) > 200:
        raise InvalidField("title", "must be 1 to 200 characters")
    if not body or len(body) > 5000:
        raise InvalidField("body", "must be 1 to 5,000 characters")
    if group:
        group = _group_name(group)
        if group not in program.plan.groups and group not in group_sizes(conn, program.id):
            raise InvalidField("group", "is not a group of this program")
    new_id = conn.execute(
        insert(t.announcements).values(
            program_id=program.id,
            group=group or None,
            title=title,
            body=body,
            created_by=created_by,
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    row = conn.execute(select(t.announcements).where(t.announcements.c.id == new_id)).one()
    return _announcement(row)


def list_announcements(conn: Connection, program_ids: list[int]) -> list[Announcement]:
    """Return the announcements of some programs, newest first."""
    rows = conn.execute(
        select(t.announcements)
        .where(t.announcements.c.program_id.in_(program_ids))
        .order_by(t.announcements.c.id.desc())
        .limit(200)
    )
    return [_announcement(r) for r in rows]


def announcements_for(conn: Connection, affiliate_id: int, limit: int = 20) -> list[Announcement]:
    """Return what an affiliate may read: their approved programs' news for all or their group."""
    a, m = t.announcements, t.memberships
    rows = conn.execute(
        select(a)
        .join(
            m,
            and_(
                m.c.program_id == a.c.program_id,
                m.c.affiliate_id == affiliate_id,
                m.c.status == "approved",
            ),
        )
        .where(or_(a.c.group.is_(None), a.c.group == m.c.group))
        .order_by(a.c.id.desc())
        .limit(limit)
    )
    return [_announcement(r) for r in rows]


# -- coupons ---------------------------------------------------------------------------


def set_coupon_status(conn: Connection, coupon: Coupon, status: str) -> Coupon:
    """Revoke a coupon (orders using it are no longer attributed) or reactivate it."""
    if status not in ("active", "revoked"):
        raise InvalidField("status", "must be active or revoked")
    conn.execute(update(t.coupons).where(t.coupons.c.id == coupon.id).values(status=status))
    updated = repo.get_coupon(conn, coupon.program_id, coupon.code)
    assert updated is not None
    return updated
