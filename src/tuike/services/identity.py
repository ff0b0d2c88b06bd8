"""Identity marks: the salted hashes of the addresses, devices and payout accounts an
account was seen with (sign-in, sign-up, payout details), the evidence of self-referral.

Only hashes are kept (``domain/privacy.py``, under ``TUIKE_PRIVACY_SALT``). A mark is one
row per (owner, kind, hash); seeing it again moves its ``last_seen``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select, update

from tuike.domain.privacy import device_hash, identity_hash, ip_hash
from tuike.services.clock import utcnow
from tuike.services.users import User
from tuike.storage import tables as t
from tuike.storage.db import insert_ignore

KINDS = ("ip", "device", "email", "payout")
_m = t.identity_marks.c
_TOUCH = (
    update(t.identity_marks)
    .where(
        _m.owner_type == bindparam("o_type"),
        _m.owner_id == bindparam("o_id"),
        _m.kind == bindparam("o_kind"),
        _m.value_hash == bindparam("o_hash"),
    )
    .values(last_seen=bindparam("seen"))
)
_MATCHING = select(_m.kind, _m.value_hash).where(
    _m.owner_type == bindparam("owner_type"),
    _m.owner_id == bindparam("owner_id"),
    _m.last_seen >= bindparam("since"),
    _m.value_hash.in_(bindparam("hashes", expanding=True)),
)


@dataclass(frozen=True, slots=True)
class Seen:
    """Where a person's request came from: the raw material of their marks (hashed)."""

    ip: str | None
    user_agent: str | None
    salt: str


@dataclass(frozen=True, slots=True)
class Mark:
    """One identity of an owner: its kind and salted hash."""

    kind: str
    value_hash: str


def record(
    conn: Connection,
    owner_type: str,
    owner_id: int,
    marks: Iterable[Mark],
    *,
    now: datetime | None = None,
) -> None:
    """Note that an owner was seen with these identities (new ones added, others touched)."""
    now = now or utcnow()
    for mark in set(marks):
        inserted = insert_ignore(
            conn,
            t.identity_marks,
            {
                "owner_type": owner_type,
                "owner_id": owner_id,
                "kind": mark.kind,
                "value_hash": mark.value_hash,
                "first_seen": now,
                "last_seen": now,
            },
            ("owner_type", "owner_id", "kind", "value_hash"),
        )
        if not inserted:
            conn.execute(
                _TOUCH,
                {
                    "o_type": owner_type,
                    "o_id": owner_id,
                    "o_kind": mark.kind,
                    "o_hash": mark.value_hash,
                    "seen": now,
                },
            )


def visit_marks(ip: str | None, user_agent: str | None, salt: str) -> list[Mark]:
    """Return the marks of a browser visit: its address and its user agent, hashed."""
    marks = []
    if hashed := ip_hash(ip, salt):
        marks.append(Mark("ip", hashed))
    if hashed := device_hash(device_id=None, user_agent=user_agent, salt=salt):
        marks.append(Mark("device", hashed))
    return marks


def note_visit(conn: Connection, user: User, seen: Seen) -> None:
    """Mark the address and browser a merchant's or affiliate's user signed in or up from.

    The marks go to the account (what self-referral compares with) and to the user.
    """
    if user.role not in ("affiliate", "merchant") or user.owner_id is None:
        return
    marks = visit_marks(seen.ip, seen.user_agent, seen.salt)
    if not marks:
        return
    now = utcnow()
    record(conn, user.role, user.owner_id, marks, now=now)
    record(conn, "user", user.id, marks, now=now)


def note_email(conn: Connection, owner_type: str, owner_id: int, email: str, salt: str) -> None:
    """Mark an account's email address (as a merchant would send it as a customer id)."""
    if email.strip():
        record(conn, owner_type, owner_id, [Mark("email", identity_hash(email, salt))])


def note_payout(conn: Connection, affiliate_id: int, account: str, salt: str) -> None:
    """Mark the payout account an affiliate gave (its earlier ones stay marked)."""
    if account.strip():
        record(conn, "affiliate", affiliate_id, [Mark("payout", identity_hash(account, salt))])


def matching(
    conn: Connection,
    owner_type: str,
    owner_id: int,
    hashes: Iterable[str],
    *,
    now: datetime,
    max_age: timedelta,
) -> list[Mark]:
    """Return the owner's marks, seen within ``max_age``, whose hash is one of ``hashes``.

    One read on the unique index (owner_type, owner_id, …).
    """
    wanted = sorted({h for h in hashes if h})
    if not wanted:
        return []
    rows = conn.execute(
        _MATCHING,
        {
            "owner_type": owner_type,
            "owner_id": owner_id,
            "since": now - max_age,
            "hashes": wanted,
        },
    )
    return [Mark(r.kind, r.value_hash) for r in rows]
