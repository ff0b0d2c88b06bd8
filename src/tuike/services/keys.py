"""API keys: created once, shown once, stored only as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is safe to store and to look up by;
passwords (low entropy) use argon2 instead (see services/users.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from tuike.domain.access import Principal
from tuike.domain.catalog import ROLES
from tuike.domain.errors import InvalidField
from tuike.services.clock import utcnow
from tuike.storage import tables as t

_ACCOUNT_TABLES = {"merchant": t.merchants, "affiliate": t.affiliates}
_ROLE_TAG = {"operator": "op", "merchant": "mc", "affiliate": "af", "program": "pg"}


def hash_key(raw: str) -> str:
    """Return the stored form of an API key."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_key(
    conn: Connection, *, role: str, owner_id: int | None, name: str, user_id: int | None = None
) -> str:
    """Create an API key and return it in clear (the only time it is seen)."""
    if role not in ROLES:
        raise InvalidField("role", f"must be one of {', '.join(ROLES)}")
    if role != "operator" and owner_id is None:
        raise InvalidField("owner", f"a {role} key needs an owner id")
    raw = f"tk_{_ROLE_TAG[role]}_{secrets.token_urlsafe(32)}"
    conn.execute(
        insert(t.api_keys).values(
            key_hash=hash_key(raw),
            prefix=raw[:10],
            role=role,
            owner_id=owner_id if role != "operator" else None,
            name=name or role,
            user_id=user_id,
            created_at=utcnow(),
        )
    )
    return raw


def authenticate(conn: Connection, raw: str | None) -> Principal | None:
    """Return the principal of a key, or None for a missing, unknown or revoked key.

    A key made by a user acts for that user (``Principal.user_id``) and stops working when
    the user is disabled, like their sessions. Program keys belong to the program: they
    keep working whoever made them, so a shop's conversions do not stop with a person.
    """
    if not raw or len(raw) > 200:
        return None
    k, u = t.api_keys.c, t.users.c
    row = conn.execute(
        select(
            k.id,
            k.role,
            k.owner_id,
            u.id.label("uid"),
            u.role.label("user_role"),
            u.owner_id.label("user_owner"),
            u.status.label("user_status"),
        )
        .select_from(t.api_keys.outerjoin(t.users, u.id == k.user_id))
        .where(k.key_hash == hash_key(raw), k.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    if row.role in _ACCOUNT_TABLES:
        # A banned (or not yet approved) merchant's or affiliate's keys stop working.
        table = _ACCOUNT_TABLES[row.role]
        status = conn.execute(select(table.c.status).where(table.c.id == row.owner_id)).scalar()
        if status != "active":
            return None
    user_id = None
    if row.uid is not None and row.user_role == row.role and row.user_owner == row.owner_id:
        if row.user_status != "active":
            return None
        user_id = row.uid
    return Principal(role=row.role, owner_id=row.owner_id, key_id=row.id, user_id=user_id)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What is shown of a key after its creation: never the key itself."""

    id: int
    prefix: str
    role: str
    owner_id: int | None
    name: str
    created_at: datetime
    revoked_at: datetime | None
    user_id: int | None


def _info(r: Any) -> KeyInfo:
    return KeyInfo(
        r.id, r.prefix, r.role, r.owner_id, r.name, r.created_at, r.revoked_at, r.user_id
    )


def list_keys(
    conn: Connection,
    *,
    user_id: int | None = None,
    role: str | None = None,
    owner_id: int | None = None,
) -> list[KeyInfo]:
    """Return keys made by a user, or the keys of an owner (e.g. a program's keys)."""
    stmt = select(t.api_keys).order_by(t.api_keys.c.id.desc())
    if user_id is not None:
        stmt = stmt.where(t.api_keys.c.user_id == user_id)
    if role is not None:
        stmt = stmt.where(t.api_keys.c.role == role, t.api_keys.c.owner_id == owner_id)
    return [_info(r) for r in conn.execute(stmt)]


def get_key(conn: Connection, key_id: int) -> KeyInfo | None:
    """Return a key's public facts."""
    r = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
    return _info(r) if r is not None else None


def revoke_key(conn: Connection, key_id: int) -> bool:
    """Revoke a key (it answers 401 from then on); False if it was revoked already."""
    return bool(
        conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount
    )
