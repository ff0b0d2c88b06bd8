"""API keys: created once, shown once, stored only as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is safe to store and to look up by;
passwords (low entropy) use argon2 instead (see services/users.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

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
    """Return the principal of a key, or None for a missing, unknown or revoked key."""
    if not raw or len(raw) > 200:
        return None
    row = conn.execute(
        select(t.api_keys.c.id, t.api_keys.c.role, t.api_keys.c.owner_id).where(
            t.api_keys.c.key_hash == hash_key(raw), t.api_keys.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    if row.role in _ACCOUNT_TABLES:
        # A banned (or not yet approved) merchant's or affiliate's keys stop working.
        table = _ACCOUNT_TABLES[row.role]
        status = conn.execute(select(table.c.status).where(table.c.id == row.owner_id)).scalar()
        if status != "active":
            return None
    return Principal(role=row.role, owner_id=row.owner_id, key_id=row.id)


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
    return [
        KeyInfo(r.id, r.prefix, r.role, r.owner_id, r.name, r.created_at, r.revoked_at)
        for r in conn.execute(stmt)
    ]


def get_key(conn: Connection, key_id: int) -> KeyInfo | None:
    """Return a key's public facts."""
    r = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
    if r is None:
        return None
    return KeyInfo(r.id, r.prefix, r.role, r.owner_id, r.name, r.created_at, r.revoked_at)


def revoke_key(conn: Connection, key_id: int) -> None:
    """Revoke a key; it answers 401 from then on."""
    conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=utcnow()))
