"""Portal users: email + argon2 password hash, one role and the merchant/affiliate owned."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from tuike.domain.access import Principal
from tuike.domain.errors import Conflict, InvalidField
from tuike.services.catalog import EMAIL
from tuike.services.clock import utcnow
from tuike.storage import tables as t

_hasher = PasswordHasher()
MIN_PASSWORD = 10
MEMBER_ROLES = ("owner", "manager", "analyst")
LOCALES = ("en", "zh_CN")


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in to a portal."""

    id: int
    email: str
    name: str
    role: str  # operator | merchant | affiliate
    owner_id: int | None  # the merchant or affiliate the user belongs to
    member_role: str  # a merchant user's role: owner | manager | analyst
    status: str  # active | disabled
    locale: str

    @property
    def principal(self) -> Principal:
        """Return the principal the services check this user's rights with."""
        return Principal(role=self.role, owner_id=self.owner_id, key_id=-self.id)

    @property
    def ref(self) -> str:
        """Return the actor reference written to the audit log."""
        return f"user:{self.id}"

    def may_write(self) -> bool:
        """Tell whether the user may change things (a merchant's analysts only read)."""
        return self.role != "merchant" or self.member_role in ("owner", "manager")


def _user(row: object) -> User:
    return User(
        id=row.id,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        role=row.role,  # type: ignore[attr-defined]
        owner_id=row.owner_id,  # type: ignore[attr-defined]
        member_role=row.member_role,  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
        locale=row.locale,  # type: ignore[attr-defined]
    )


def check_email(email: str) -> str:
    """Return a normalised email address or raise InvalidField."""
    email = (email or "").strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidField("email", "is not an email address")
    return email


def check_password(password: str) -> str:
    """Refuse passwords too short or too long to be useful."""
    if len(password or "") < MIN_PASSWORD:
        raise InvalidField("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > 200:
        raise InvalidField("password", "must be at most 200 characters")
    return password


def hash_password(password: str) -> str:
    """Return the argon2 hash of a password."""
    return _hasher.hash(password)


def create_user(
    conn: Connection,
    *,
    email: str,
    password: str,
    role: str,
    owner_id: int | None,
    name: str,
    member_role: str = "",
    locale: str = "",
) -> int:
    """Create a portal user and return its id."""
    email = check_email(email)
    check_password(password)
    if role == "merchant" and member_role not in MEMBER_ROLES:
        raise InvalidField("member_role", f"must be one of {', '.join(MEMBER_ROLES)}")
    if conn.execute(select(t.users.c.id).where(t.users.c.email == email)).first():
        raise Conflict("a user with this email address exists already")
    return conn.execute(
        insert(t.users).values(
            email=email,
            password_hash=hash_password(password),
            role=role,
            owner_id=owner_id,
            name=(name or "").strip()[:200] or email,
            member_role=member_role if role == "merchant" else "",
            locale=locale if locale in LOCALES else "",
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]


def get_user(conn: Connection, user_id: int) -> User | None:
    """Return a user by id."""
    row = conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
    return _user(row) if row else None


def find_user(conn: Connection, email: str) -> User | None:
    """Return a user by email address."""
    row = conn.execute(select(t.users).where(t.users.c.email == email.strip().lower())).first()
    return _user(row) if row else None


def users_of(conn: Connection, role: str, owner_id: int) -> list[User]:
    """Return the users of a merchant or affiliate."""
    rows = conn.execute(
        select(t.users)
        .where(t.users.c.role == role, t.users.c.owner_id == owner_id)
        .order_by(t.users.c.id)
    )
    return [_user(r) for r in rows]


def set_password(conn: Connection, user_id: int, password: str) -> None:
    """Set a user's password and end all their sessions."""
    check_password(password)
    conn.execute(
        update(t.users).where(t.users.c.id == user_id).values(password_hash=hash_password(password))
    )
    conn.execute(delete(t.sessions).where(t.sessions.c.user_id == user_id))


def set_locale(conn: Connection, user_id: int, locale: str) -> None:
    """Remember a user's language."""
    if locale not in LOCALES:
        raise InvalidField("locale", f"must be one of {', '.join(LOCALES)}")
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(locale=locale))


def verify_password(conn: Connection, email: str, password: str) -> User | None:
    """Return the user when the password matches, else None (same time either way)."""
    row = conn.execute(select(t.users).where(t.users.c.email == email.strip().lower())).first()
    if row is None:
        _hasher.hash(password)  # spend the same time as a real check
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(
            update(t.users)
            .where(t.users.c.id == row.id)
            .values(password_hash=_hasher.hash(password))
        )
    return _user(row)


def verify_login(conn: Connection, email: str, password: str) -> Principal | None:
    """Return the user's principal when the password matches, else None."""
    user = verify_password(conn, email, password)
    return user.principal if user else None
