"""Abuse reports: anyone may report a tracking link spammed into a group or a forum.

A report names the link (its tracking URL or code), where it was seen, what kind of
abuse it is and, if the reporter likes, an email address to answer. The link's
affiliate and program are resolved when it is filed; the operator upholds or dismisses
it with a reason (audit-logged), and the affiliate's quality score counts the reports
against them (``reports_against``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, func, insert, select, update

from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.ids import is_link_code
from tuike.domain.privacy import ip_hash
from tuike.services import audit
from tuike.services.catalog import EMAIL
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.storage import tables as t

KINDS = ("group_spam", "forum_spam", "misleading", "other")
STATUSES = ("open", "upheld", "dismissed")
RESOLUTIONS = ("upheld", "dismissed")
_a = t.abuse_reports.c


@dataclass(frozen=True, slots=True)
class AbuseReport:
    """A report of a link, and what the operator decided."""

    id: int
    link_code: str | None
    link_id: int | None
    affiliate_id: int | None
    program_id: int | None
    kind: str
    where_url: str
    description: str
    reporter_email: str
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str


def _report(row: object) -> AbuseReport:
    return AbuseReport(**{f: getattr(row, f) for f in AbuseReport.__dataclass_fields__})


def link_code_of(link: str) -> str:
    """Return the code of a tracking link given as its URL (…/c/CODE?…) or as the code."""
    text = (link or "").strip()
    if "/" in text:
        path = urlsplit(text if "://" in text else f"https://{text}").path
        parts = [p for p in path.split("/") if p]
        text = parts[parts.index("c") + 1] if "c" in parts[:-1] else ""
    if not is_link_code(text):
        raise InvalidField("link", "is not a tracking link of this platform (…/c/CODE)")
    return text


def _text(value: str, field: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise InvalidField(field, f"must be at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
        raise InvalidField(field, "must not contain control characters")
    return value


def file_report(
    conn: Connection,
    *,
    link: str,
    kind: str,
    where_url: str = "",
    description: str = "",
    reporter_email: str = "",
    reporter_ip: str | None = None,
    salt: str,
) -> AbuseReport:
    """Store a report of a tracking link, with its affiliate and program resolved."""
    code = link_code_of(link)
    if kind not in KINDS:
        raise InvalidField("kind", f"must be one of {', '.join(KINDS)}")
    where_url = _text(where_url, "where_url", 2048)
    description = _text(description, "description", 4000)
    if not (where_url or description):
        raise InvalidField("description", "say where the link was spammed, or what happened")
    reporter_email = (reporter_email or "").strip().lower()
    if reporter_email and (not EMAIL.match(reporter_email) or len(reporter_email) > 254):
        raise InvalidField("reporter_email", "is not an email address")
    found = repo.get_link_by_code(conn, code)
    if found is None:
        raise InvalidField("link", "is not a tracking link of this platform (…/c/CODE)")
    report_id = conn.execute(
        insert(t.abuse_reports).values(
            link_code=code,
            link_id=found.id,
            affiliate_id=found.affiliate_id,
            program_id=found.program_id,
            kind=kind,
            where_url=where_url,
            description=description,
            reporter_email=reporter_email,
            reporter_ip_hash=ip_hash(reporter_ip, salt) or "",
            status="open",
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    return get_report(conn, int(report_id))


def get_report(conn: Connection, report_id: int) -> AbuseReport:
    """Return a report by id."""
    row = conn.execute(select(t.abuse_reports).where(_a.id == report_id)).first()
    if row is None:
        raise NotFound("abuse report")
    return _report(row)


def list_reports(
    conn: Connection, *, status: str | None = None, limit: int = 200
) -> list[AbuseReport]:
    """Return reports, newest first, optionally of one status."""
    if status is not None and status not in STATUSES:
        raise InvalidField("status", f"must be one of {', '.join(STATUSES)}")
    stmt = select(t.abuse_reports).order_by(_a.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(_a.status == status)
    return [_report(r) for r in conn.execute(stmt)]


def resolve(
    conn: Connection, report_id: int, status: str, *, reason: str, actor: str
) -> AbuseReport:
    """Uphold or dismiss an open report with a reason (audit-logged; once)."""
    if status not in RESOLUTIONS:
        raise InvalidField("status", "must be upheld or dismissed")
    reason = _text(reason, "reason", 500)
    if not reason:
        raise InvalidField("reason", "is required to resolve a report")
    report = get_report(conn, report_id)
    moved = conn.execute(
        update(t.abuse_reports)
        .where(_a.id == report_id, _a.status == "open")
        .values(status=status, resolved_at=utcnow(), resolved_by=actor[:64], resolution=reason)
    ).rowcount
    if moved != 1:
        raise Conflict(f"the report is {report.status} already")
    audit.record(
        conn,
        actor,
        f"abuse_report.{status}",
        f"abuse_report:{report_id}",
        reason=reason,
        affiliate_id=report.affiliate_id,
        program_id=report.program_id,
    )
    return get_report(conn, report_id)


def reports_against(conn: Connection, affiliate_id: int, since: datetime) -> dict[str, int]:
    """Return how many reports against an affiliate were filed since a time, by status.

    Every status is present (0 when none): ``{"open": 1, "upheld": 2, "dismissed": 0}``.
    """
    counts = dict.fromkeys(STATUSES, 0)
    rows = conn.execute(
        select(_a.status, func.count())
        .where(_a.affiliate_id == affiliate_id, _a.created_at >= since)
        .group_by(_a.status)
    )
    for status, n in rows:
        counts[status] = int(n)
    return counts
