"""Signing in: passwords with a rate limit, sessions, and password resets by mailed token.

Session and reset tokens carry 256 bits of randomness and are stored only as SHA-256
hashes, like API keys: a leaked table opens no account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, update

from tuike.domain.errors import InvalidField
from tuike.services import audit, identity, mail, platform
from tuike.services.clock import utcnow
from tuike.services.users import User, find_user, get_user, set_password, verify_password
from tuike.storage import tables as t

RESET_TTL = timedelta(hours=2)
INVITE_TTL = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """How many failed logins are allowed in a window, per email and per address."""

    window: timedelta = timedelta(minutes=15)
    per_email: int = 5
    per_ip: int = 30


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The outcome of a login: the user, or why not (``bad`` or ``throttled``)."""

    user: User | None
    refused: str = ""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _failures(conn: Connection, column: object, value: str, since: datetime) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(t.login_attempts)
            .where(
                column == value, t.login_attempts.c.at >= since, t.login_attempts.c.ok.is_(False)
            )
        ).scalar_one()
    )


def login(
    conn: Connection,
    email: str,
    password: str,
    *,
    ip: str,
    limits: LoginLimits,
    account_status: str | None = None,
    seen: identity.Seen | None = None,
) -> LoginResult:
    """Check a password, unless this email or address failed too often lately.

    Every attempt is recorded; a throttled attempt does not even check the password, so
    guessing cannot go on at argon2 speed. A successful sign-in marks the address and
    browser it came from (``seen``) as the account's (identity marks, self-referral).
    """
    email = (email or "").strip().lower()[:254]
    ip = (ip or "")[:64]
    now = utcnow()
    since = now - limits.window
    if (
        _failures(conn, t.login_attempts.c.email, email, since) >= limits.per_email
        or _failures(conn, t.login_attempts.c.ip, ip, since) >= limits.per_ip
    ):
        conn.execute(insert(t.login_attempts).values(email=email, ip=ip, ok=False, at=now))
        return LoginResult(None, "throttled")
    user = verify_password(conn, email, password or "")
    ok = user is not None and user.status == "active"
    conn.execute(insert(t.login_attempts).values(email=email, ip=ip, ok=ok, at=now))
    if ok and user is not None and seen is not None:
        identity.note_visit(conn, user, seen)
    return LoginResult(user if ok else None, "" if ok else "bad")


def take_attempt(conn: Connection, action: str, ip: str, *, limit: int, window: timedelta) -> bool:
    """Count an attempt at an unauthenticated action from an address; False past the limit.

    Attempts are kept in ``login_attempts`` under the action's name (``api:signup``: never
    an email address, it has no @) and marked ``ok``, so they never count as failed
    logins. Refused attempts are not recorded: the limit frees up as the window moves on.
    """
    ip = (ip or "")[:64]
    now = utcnow()
    seen = conn.execute(
        select(func.count())
        .select_from(t.login_attempts)
        .where(
            t.login_attempts.c.email == action,
            t.login_attempts.c.ip == ip,
            t.login_attempts.c.at >= now - window,
        )
    ).scalar_one()
    if seen >= limit:
        return False
    conn.execute(insert(t.login_attempts).values(email=action, ip=ip, ok=True, at=now))
    return True


def create_session(conn: Connection, user: User, ttl: timedelta) -> str:
    """Open a session for a user and return its token (kept only by the browser)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(
        insert(t.sessions).values(
            token_hash=_hash(raw), user_id=user.id, created_at=now, expires_at=now + ttl
        )
    )
    return raw


def session_user(conn: Connection, raw: str | None) -> User | None:
    """Return the user of a live session token, or None."""
    if not raw or len(raw) > 100:
        return None
    row = conn.execute(
        select(t.sessions.c.user_id).where(
            t.sessions.c.token_hash == _hash(raw), t.sessions.c.expires_at > utcnow()
        )
    ).first()
    if row is None:
        return None
    user = get_user(conn, row.user_id)
    return user if user is not None and user.status == "active" else None


def end_session(conn: Connection, raw: str | None) -> None:
    """Close a session (logout)."""
    if raw:
        conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == _hash(raw)))


def start_password_reset(
    conn: Connection, user: User, reset_url: str, *, invitation: bool = False
) -> None:
    """Mail a user a one-time link that sets a new password."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(
        insert(t.password_resets).values(
            token_hash=_hash(raw),
            user_id=user.id,
            created_at=now,
            expires_at=now + (INVITE_TTL if invitation else RESET_TTL),
        )
    )
    link = f"{reset_url.rstrip('/')}/{raw}"
    settings = platform.load(conn)
    name = settings.platform_name
    if invitation:
        subject = f"You are invited to {name} / 您已受邀加入 {name}"
        body = f"Set your password to join your team:\n设置密码以加入团队：\n\n{link}\n"
    else:
        subject = f"Reset your {name} password / 重置 {name} 密码"
        body = (
            "Someone asked to reset your password. If it was you, open this link within "
            f"two hours:\n如果是您本人申请重置密码，请在两小时内打开此链接：\n\n{link}\n"
        )
    if settings.support_email:
        body += f"\nHelp / 帮助: {settings.support_email}\n"
    mail.queue(conn, user.email, subject, body)


def request_password_reset(conn: Connection, email: str, reset_url: str) -> None:
    """Mail a reset link if the address has an account; answer the same either way."""
    user = find_user(conn, email or "")
    if user is not None and user.status == "active":
        start_password_reset(conn, user, reset_url)


def reset_password(conn: Connection, raw: str, password: str) -> User:
    """Set a new password with a reset token; the token then stops working."""
    row = conn.execute(
        select(t.password_resets).where(t.password_resets.c.token_hash == _hash(raw or ""))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise InvalidField("token", "this link is unknown, used or expired; ask for a new one")
    set_password(conn, row.user_id, password)
    conn.execute(
        update(t.password_resets).where(t.password_resets.c.id == row.id).values(used_at=utcnow())
    )
    audit.record(conn, f"user:{row.user_id}", "user.reset_password", f"user:{row.user_id}")
    user = get_user(conn, row.user_id)
    assert user is not None
    return user


def reset_token_valid(conn: Connection, raw: str) -> bool:
    """Tell whether a reset link can still be used (to show the form or an error)."""
    row = conn.execute(
        select(t.password_resets.c.used_at, t.password_resets.c.expires_at).where(
            t.password_resets.c.token_hash == _hash(raw or "")
        )
    ).first()
    return row is not None and row.used_at is None and row.expires_at > utcnow()
