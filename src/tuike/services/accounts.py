"""Accounts: sign-ups, a merchant's team, and the operator's approvals and bans."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, select, update

from tuike.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from tuike.services import audit, catalog, identity, platform
from tuike.services.auth import start_password_reset
from tuike.services.users import (
    MEMBER_ROLES,
    User,
    check_email,
    check_password,
    create_user,
    find_user,
    get_user,
)
from tuike.storage import tables as t

ACCOUNT_STATUSES = ("pending", "active", "banned")
_MOVES = {
    "merchant": {"pending": {"active", "banned"}, "active": {"banned"}, "banned": {"active"}},
    "affiliate": {"active": {"banned"}, "banned": {"active"}},
}


class SignUpClosed(Forbidden):
    """The operator closed sign-up for this kind of account (maps to 403)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} sign-up is closed")
        self.kind = kind


def sign_up_affiliate(
    conn: Connection,
    *,
    name: str,
    email: str,
    password: str,
    timezone: str,
    channels: Sequence[Mapping[str, str]],
    locale: str = "",
    seen: identity.Seen | None = None,
) -> User:
    """Create an affiliate who declared the channels they promote on, and its user.

    ``seen``: where the sign-up came from; its address, browser and the email address are
    marked as the affiliate's (identity marks, the evidence of self-referral).
    """
    if not platform.load(conn).affiliate_signup_open:
        raise SignUpClosed("affiliate")
    email = check_email(email)
    check_password(password)
    if not channels:
        raise InvalidField("channels", "declare at least one channel you promote on")
    if find_user(conn, email) is not None:
        raise Conflict("an account with this email address exists already")
    affiliate = catalog.create_affiliate(
        conn, name=name, email=email, timezone=timezone, channels=channels
    )
    user_id = create_user(
        conn,
        email=email,
        password=password,
        role="affiliate",
        owner_id=affiliate.id,
        name=name,
        locale=locale,
    )
    audit.record(conn, f"user:{user_id}", "affiliate.sign_up", f"affiliate:{affiliate.id}")
    user = get_user(conn, user_id)
    assert user is not None
    if seen is not None:
        identity.note_visit(conn, user, seen)
        identity.note_email(conn, "affiliate", affiliate.id, email, seen.salt)
    return user


def sign_up_merchant(
    conn: Connection,
    *,
    company: str,
    name: str,
    email: str,
    password: str,
    timezone: str,
    locale: str = "",
    seen: identity.Seen | None = None,
) -> User:
    """Create a merchant awaiting the operator's approval, and its owner user (``seen``:
    where the sign-up came from, marked as the merchant's)."""
    if not platform.load(conn).merchant_signup_open:
        raise SignUpClosed("merchant")
    email = check_email(email)
    check_password(password)
    if find_user(conn, email) is not None:
        raise Conflict("an account with this email address exists already")
    try:
        merchant = catalog.create_merchant(conn, name=company, timezone=timezone)
    except InvalidField as exc:
        # The merchant's name is what the sign-up form calls the company.
        raise InvalidField("company" if exc.field == "name" else exc.field, exc.message) from None
    conn.execute(
        update(t.merchants).where(t.merchants.c.id == merchant.id).values(status="pending")
    )
    user_id = create_user(
        conn,
        email=email,
        password=password,
        role="merchant",
        owner_id=merchant.id,
        name=name,
        member_role="owner",
        locale=locale,
    )
    audit.record(conn, f"user:{user_id}", "merchant.sign_up", f"merchant:{merchant.id}")
    user = get_user(conn, user_id)
    assert user is not None
    if seen is not None:
        identity.note_visit(conn, user, seen)
    return user


def account_status(conn: Connection, kind: str, owner_id: int | None) -> str:
    """Return the status of the merchant or affiliate a user belongs to (operators: active)."""
    if kind not in ("merchant", "affiliate") or owner_id is None:
        return "active"
    table = t.merchants if kind == "merchant" else t.affiliates
    status = conn.execute(select(table.c.status).where(table.c.id == owner_id)).scalar()
    return status or "banned"


def set_account_status(
    conn: Connection, kind: str, owner_id: int, status: str, *, actor: str, reason: str
) -> None:
    """Approve, ban or reinstate a merchant or an affiliate, with the operator's reason."""
    if kind not in _MOVES:
        raise InvalidField("kind", "must be merchant or affiliate")
    current = account_status(conn, kind, owner_id)
    table = t.merchants if kind == "merchant" else t.affiliates
    if conn.execute(select(table.c.id).where(table.c.id == owner_id)).first() is None:
        raise NotFound(kind)
    if status not in _MOVES[kind].get(current, set()):
        raise Conflict(f"a {current} {kind} cannot become {status}")
    reason = (reason or "").strip()
    if status == "banned" and not reason:
        raise InvalidField("reason", "is required to ban an account")
    conn.execute(update(table).where(table.c.id == owner_id).values(status=status))
    if status == "banned":
        # Their open sessions end now; keys stop working through the status check.
        users = select(t.users.c.id).where(t.users.c.role == kind, t.users.c.owner_id == owner_id)
        conn.execute(t.sessions.delete().where(t.sessions.c.user_id.in_(users)))
    audit.record(
        conn, actor, f"{kind}.{status}", f"{kind}:{owner_id}", reason=reason[:500], was=current
    )


def add_member(
    conn: Connection,
    *,
    merchant_id: int,
    email: str,
    name: str,
    member_role: str,
    actor: User,
    reset_url: str,
) -> User:
    """Add a user to a merchant's team; they set their password from the mailed link."""
    if actor.role != "merchant" or actor.owner_id != merchant_id or actor.member_role != "owner":
        raise Conflict("only the merchant's owners manage its team")
    if member_role not in MEMBER_ROLES:
        raise InvalidField("member_role", f"must be one of {', '.join(MEMBER_ROLES)}")
    user_id = create_user(
        conn,
        email=email,
        password=secrets.token_urlsafe(24),  # nobody knows it; the invitation sets one
        role="merchant",
        owner_id=merchant_id,
        name=name,
        member_role=member_role,
    )
    user = get_user(conn, user_id)
    assert user is not None
    start_password_reset(conn, user, reset_url, invitation=True)
    audit.record(conn, actor.ref, "merchant.add_member", f"user:{user_id}", member_role=member_role)
    return user


def set_member_role(
    conn: Connection, *, actor: User, user_id: int, member_role: str, status: str = "active"
) -> None:
    """Change a team member's role or disable them (an owner cannot demote themselves)."""
    target = get_user(conn, user_id)
    if (
        target is None
        or actor.role != "merchant"
        or actor.member_role != "owner"
        or target.role != "merchant"
        or target.owner_id != actor.owner_id
    ):
        raise NotFound("user")
    if member_role not in MEMBER_ROLES:
        raise InvalidField("member_role", f"must be one of {', '.join(MEMBER_ROLES)}")
    if status not in ("active", "disabled"):
        raise InvalidField("status", "must be active or disabled")
    if target.id == actor.id and (member_role != "owner" or status != "active"):
        raise Conflict("an owner cannot demote or disable themselves")
    conn.execute(
        update(t.users)
        .where(t.users.c.id == user_id)
        .values(member_role=member_role, status=status)
    )
    if status == "disabled":
        conn.execute(t.sessions.delete().where(t.sessions.c.user_id == user_id))
    audit.record(
        conn,
        actor.ref,
        "merchant.set_member",
        f"user:{user_id}",
        member_role=member_role,
        status=status,
    )


PAYOUT_METHODS = ("bank", "alipay", "paypal")


def payout_details(conn: Connection, affiliate_id: int) -> dict[str, str]:
    """Return where an affiliate is paid: method, account and account holder."""
    row = conn.execute(
        select(
            t.affiliates.c.payout_method, t.affiliates.c.payout_account, t.affiliates.c.payout_name
        ).where(t.affiliates.c.id == affiliate_id)
    ).first()
    if row is None:
        raise NotFound("affiliate")
    return {"method": row.payout_method, "account": row.payout_account, "name": row.payout_name}


def update_affiliate_profile(
    conn: Connection,
    affiliate_id: int,
    *,
    name: str,
    timezone: str,
    payout_method: str,
    payout_account: str,
    payout_name: str,
    actor: str,
    salt: str,
) -> None:
    """Change an affiliate's name, time zone and payout details (audit-logged).

    The payout account is marked as the affiliate's (hashed under ``salt``): a buyer who
    pays with it is the affiliate (self-referral), and earlier accounts stay marked.
    """
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidField("name", "must be 1 to 200 characters")
    if payout_method not in PAYOUT_METHODS:
        raise InvalidField("payout_method", f"must be one of {', '.join(PAYOUT_METHODS)}")
    for field, value in (("payout_account", payout_account), ("payout_name", payout_name)):
        if len(value) > 200 or any(ord(ch) < 32 for ch in value):
            raise InvalidField(field, "must be at most 200 printable characters")
    conn.execute(
        update(t.affiliates)
        .where(t.affiliates.c.id == affiliate_id)
        .values(
            name=name,
            timezone=catalog.check_timezone(timezone),
            payout_method=payout_method,
            payout_account=payout_account.strip(),
            payout_name=payout_name.strip(),
        )
    )
    identity.note_payout(conn, affiliate_id, payout_account, salt)
    audit.record(
        conn, actor, "affiliate.update_profile", f"affiliate:{affiliate_id}", method=payout_method
    )
