"""Portal users: email + argon2 password hash, one role and the merchant/affiliate owned."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select

from tuike.domain.access import Principal
from tuike.domain.errors import InvalidField
from tuike.services.clock import utcnow
from tuike.storage import tables as t

_hasher = PasswordHasher()


def create_user(
    conn: Connection, *, email: str, password: str, role: str, owner_id: int | None, name: str
) -> int:
    """Create a portal user and return its id."""
    if len(password) < 8:
        raise InvalidField("password", "must be at least 8 characters")
    return conn.execute(
        insert(t.users).values(
            email=email.strip().lower(),
            password_hash=_hasher.hash(password),
            role=role,
            owner_id=owner_id,
            name=name,
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]


def verify_login(conn: Connection, email: str, password: str) -> Principal | None:
    """Return the user's principal when the password matches, else None."""
    row = conn.execute(select(t.users).where(t.users.c.email == email.strip().lower())).first()
    if row is None:
        _hasher.hash(password)  # spend the same time as a real check
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return Principal(role=row.role, owner_id=row.owner_id, key_id=-row.id)
