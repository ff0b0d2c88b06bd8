"""The audit log: every privileged action, written in the transaction that made it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from tuike.services.clock import utcnow
from tuike.storage import tables as t


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One privileged action: who, what, on what, with which details."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def record(conn: Connection, actor: str, action: str, target: str, **detail: Any) -> None:
    """Append an action to the audit log (actor like ``user:3``, target like ``merchant:7``)."""
    conn.execute(
        insert(t.audit_log).values(
            at=utcnow(), actor=actor, action=action, target=target, detail=detail
        )
    )


def recent(
    conn: Connection, *, limit: int = 200, action: str | None = None
) -> Sequence[AuditEntry]:
    """Return the newest audit entries, optionally of one action."""
    stmt = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(t.audit_log.c.action == action)
    return [
        AuditEntry(r.id, r.at, r.actor, r.action, r.target, dict(r.detail or {}))
        for r in conn.execute(stmt)
    ]
