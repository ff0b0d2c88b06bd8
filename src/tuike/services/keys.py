"""API keys: created once, shown once, stored only as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is safe to store and to look up by;
passwords (low entropy) use argon2 instead (see services/users.py).
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, insert, select, update

from tuike.domain.access import Principal
from tuike.domain.catalog import ROLES
from tuike.domain.errors import InvalidField
from tuike.services.clock import utcnow
from tuike.storage import tables as t

_ROLE_TAG = {"operator": "op", "merchant": "mc", "affiliate": "af", "program": "pg"}


def hash_key(raw: str) -> str:
    """Return the stored form of an API key."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_key(conn: Connection, *, role: str, owner_id: int | None, name: str) -> str:
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
    return Principal(role=row.role, owner_id=row.owner_id, key_id=row.id)


def revoke_key(conn: Connection, key_id: int) -> None:
    """Revoke a key; it answers 401 from then on."""
    conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=utcnow()))
