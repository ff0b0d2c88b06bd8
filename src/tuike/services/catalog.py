"""Use cases of the catalog: merchants, programs, affiliates, memberships, links, coupons."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, insert, select, update

from tuike.domain import ids
from tuike.domain.catalog import (
    ACTIVE,
    CHANNEL_KINDS,
    MEMBERSHIP_MOVES,
    PAUSED,
    Affiliate,
    Coupon,
    Creative,
    Link,
    Membership,
    Merchant,
    Program,
)
from tuike.domain.commission import plan_from_dict, plan_to_dict
from tuike.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from tuike.domain.fraud import FraudConfig
from tuike.domain.landing import check_deep_link, check_landing_url, normalize_host
from tuike.domain.ledger import FEE_MODES
from tuike.domain.money import check_currency
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.storage import tables as t

PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
COUPON_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,63}$")
EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
CATALOG_VERSION_KEY = "catalog"


def check_timezone(name: str, field: str = "timezone") -> str:
    """Return an IANA time zone name or raise InvalidField."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidField(field, f"unknown time zone {name!r}") from None
    return name


def _printable(value: str, field: str) -> str:
    # A NUL cannot be stored in PostgreSQL text; no control character belongs in a name.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidField(field, "must not contain control characters")
    return value


def _text(value: str, field: str, max_len: int = 200) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidField(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidField(field, f"must be at most {max_len} characters")
    return _printable(value, field)


def create_merchant(conn: Connection, *, name: str, timezone: str) -> Merchant:
    """Create a merchant."""
    now = utcnow()
    new_id = conn.execute(
        insert(t.merchants).values(
            name=_text(name, "name"), timezone=check_timezone(timezone), created_at=now
        )
    ).inserted_primary_key[0]
    return Merchant(id=new_id, name=name.strip(), timezone=timezone, created_at=now)


def _domains(values: Sequence[str]) -> list[str]:
    if not isinstance(values, (list, tuple)):
        raise InvalidField("allowed_domains", "must be a list of host names")
    out = []
    for raw in values:
        host = normalize_host(str(raw))
        if not host or "/" in host or ":" in host or "." not in host:
            raise InvalidField("allowed_domains", f"{raw!r} is not a host name")
        out.append(host)
    return sorted(set(out))


def _program_values(fields: Mapping[str, Any], currency: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = _text(fields["name"], "name")
    if "landing_url" in fields:
        values["landing_url"] = check_landing_url(fields["landing_url"], "landing_url")
    if "fallback_url" in fields:
        url = fields["fallback_url"]
        values["fallback_url"] = check_landing_url(url, "fallback_url") if url else None
    if "allowed_domains" in fields:
        values["allowed_domains"] = _domains(fields["allowed_domains"])
    if "click_param" in fields:
        if not PARAM_NAME.match(fields["click_param"] or ""):
            raise InvalidField("click_param", "must be a query parameter name like tk_click")
        values["click_param"] = fields["click_param"]
    for name, upper in (("cookie_days", 365), ("lock_days", 365)):
        if name in fields:
            value = fields[name]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= upper:
                raise InvalidField(name, f"must be a whole number of days from 0 to {upper}")
            values[name] = value
    if "commission_plan" in fields:
        values["commission_plan"] = plan_to_dict(
            plan_from_dict(fields["commission_plan"], currency)
        )
    if "status" in fields:
        if fields["status"] not in (ACTIVE, PAUSED):
            raise InvalidField("status", "must be active or paused")
        values["status"] = fields["status"]
        # A person's decision: a top-up no longer resumes a program tuike paused itself.
        values["paused_reason"] = ""
    for flag in ("require_signature", "pixel_pending_review"):
        if flag in fields:
            values[flag] = bool(fields[flag])
    if "fraud_config" in fields:
        # Stored in full (every key with its value), as FraudConfig.parse reads it back.
        values["fraud_config"] = FraudConfig.parse(fields["fraud_config"]).as_dict()
    if "category" in fields:
        values["category"] = _printable((fields["category"] or "").strip()[:64], "category")
    if "timezone" in fields:
        values["timezone"] = check_timezone(fields["timezone"])
    if "fee_rate" in fields:
        values["fee_rate_ppm"] = parse_fee_rate(fields["fee_rate"])
    if "override_rate" in fields:
        values["override_rate_ppm"] = parse_fee_rate(fields["override_rate"], "override_rate")
    if "fee_mode" in fields:
        if fields["fee_mode"] not in FEE_MODES:
            raise InvalidField("fee_mode", f"must be one of {', '.join(FEE_MODES)}")
        values["fee_mode"] = fields["fee_mode"]
    return values


def parse_fee_rate(raw: Any, field: str = "fee_rate") -> int:
    """Parse a rate ("0.10" for 10 %) into parts per million."""
    if isinstance(raw, (bool, float)) or not isinstance(raw, (str, int)):
        raise InvalidField(field, 'must be a decimal string such as "0.10"')
    try:
        rate = Decimal(str(raw).strip())
    except InvalidOperation:
        raise InvalidField(field, f"{raw!r} is not a number") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise InvalidField(field, "must be between 0 and 1")
    ppm = rate * 1_000_000
    if ppm != ppm.to_integral_value():
        raise InvalidField(field, "has at most 6 decimal places")
    return int(ppm)


def create_program(conn: Connection, *, merchant_id: int, currency: str, **fields: Any) -> Program:
    """Create a program for a merchant; the landing URL's host is always allowed."""
    merchant = repo.get_merchant(conn, merchant_id)
    if merchant is None:
        raise NotFound("merchant")
    check_currency(currency)
    for required in ("name", "landing_url", "commission_plan"):
        if required not in fields:
            raise InvalidField(required, "is required")
    if fields.get("cookie_days") is None:
        from tuike.services.platform import load as platform_settings  # platform imports us

        fields["cookie_days"] = platform_settings(conn).default_cookie_days
    fields.setdefault("lock_days", 30)
    fields.setdefault("timezone", merchant.timezone)
    values = _program_values(fields, currency)
    landing_host = normalize_host(values["landing_url"].split("/")[2].split(":")[0])
    values["allowed_domains"] = sorted({*values.get("allowed_domains", []), landing_host})
    now = utcnow()
    new_id = conn.execute(
        insert(t.programs).values(
            public_id=ids.new_public_id("prg"),
            merchant_id=merchant_id,
            currency=currency,
            postback_secret=secrets.token_hex(32),
            created_at=now,
            updated_at=now,
            **values,
        )
    ).inserted_primary_key[0]
    bump_version(conn)
    program = repo.get_program(conn, new_id)
    assert program is not None
    return program


def update_program(conn: Connection, program: Program, **fields: Any) -> Program:
    """Change a program's settings (currency and merchant never change)."""
    values = _program_values(fields, program.currency)
    if "landing_url" in values or "allowed_domains" in values:
        landing = values.get("landing_url", program.landing_url)
        domains = values.get("allowed_domains", list(program.allowed_domains))
        host = normalize_host(landing.split("/")[2].split(":")[0])
        values["allowed_domains"] = sorted({*domains, host})
    if values:
        values["updated_at"] = utcnow()
        conn.execute(update(t.programs).where(t.programs.c.id == program.id).values(**values))
        bump_version(conn)
    updated = repo.get_program(conn, program.id)
    assert updated is not None
    return updated


def create_affiliate(
    conn: Connection,
    *,
    name: str,
    email: str,
    timezone: str,
    channels: Sequence[Mapping[str, str]] = (),
    recruited_by: int | None = None,
) -> Affiliate:
    """Create an affiliate with the channels they promote on (and who recruited them)."""
    email = (email or "").strip().lower()
    if recruited_by is not None and repo.get_affiliate(conn, recruited_by) is None:
        raise InvalidField("recruited_by", "is not an affiliate")
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidField("email", "is not an email address")
    if conn.execute(select(t.affiliates.c.id).where(t.affiliates.c.email == email)).first():
        raise Conflict("an affiliate with this email address exists already")
    now = utcnow()
    new_id = conn.execute(
        insert(t.affiliates).values(
            name=_text(name, "name"),
            email=email,
            status=ACTIVE,
            timezone=check_timezone(timezone),
            recruited_by=recruited_by,
            created_at=now,
        )
    ).inserted_primary_key[0]
    for i, channel in enumerate(channels):
        add_channel(conn, new_id, field=f"channels[{i}]", **channel)
    affiliate = repo.get_affiliate(conn, new_id)
    assert affiliate is not None
    return affiliate


def add_channel(
    conn: Connection, affiliate_id: int, *, kind: str, name: str, url: str, field: str = "channel"
) -> None:
    """Add a promotion channel (website, SNS, forum, IM group, blog, app) to an affiliate."""
    if kind not in CHANNEL_KINDS:
        raise InvalidField(f"{field}.kind", f"must be one of {', '.join(CHANNEL_KINDS)}")
    conn.execute(
        insert(t.channels).values(
            affiliate_id=affiliate_id,
            kind=kind,
            name=_text(name, f"{field}.name"),
            url=_text(url, f"{field}.url", 2048),
        )
    )
    bump_version(conn)  # the tracker compares referers with the declared channels


def apply_to_program(conn: Connection, *, program: Program, affiliate_id: int) -> Membership:
    """Let an affiliate apply to a program (a second application is refused)."""
    if repo.get_membership(conn, program.id, affiliate_id) is not None:
        raise Conflict("the affiliate has already applied to this program")
    if repo.get_affiliate(conn, affiliate_id) is None:
        raise NotFound("affiliate")
    now = utcnow()
    conn.execute(
        insert(t.memberships).values(
            program_id=program.id,
            affiliate_id=affiliate_id,
            status="applied",
            group="",
            created_at=now,
            updated_at=now,
        )
    )
    membership = repo.get_membership(conn, program.id, affiliate_id)
    assert membership is not None
    return membership


def decide_membership(
    conn: Connection, membership: Membership, *, status: str, group: str | None = None
) -> Membership:
    """Approve, reject or ban a membership, and optionally set its commission group."""
    if status != membership.status and status not in MEMBERSHIP_MOVES.get(
        membership.status, frozenset()
    ):
        raise Conflict(f"illegal membership move {membership.status} → {status}")
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if group is not None:
        if len(group) > 40:
            raise InvalidField("group", "must be at most 40 characters")
        values["group"] = _printable(group, "group")
    conn.execute(update(t.memberships).where(t.memberships.c.id == membership.id).values(**values))
    bump_version(conn)
    updated = repo.get_membership_by_id(conn, membership.id)
    assert updated is not None
    return updated


CREATIVE_KINDS = ("banner", "text", "html", "qr", "video")


def create_creative(
    conn: Connection,
    *,
    program: Program,
    kind: str,
    name: str,
    image_url: str | None = None,
    landing_url: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Creative:
    """Add a banner, text link or QR creative to a program."""
    if kind not in CREATIVE_KINDS:
        raise InvalidField("kind", "must be banner, text, html, qr or video")
    if image_url:
        check_landing_url(image_url, "image_url")
    if landing_url:
        check_deep_link(landing_url, program.allowed_domains, "landing_url")
    new_id = conn.execute(
        insert(t.creatives).values(
            program_id=program.id,
            kind=kind,
            name=_text(name, "name"),
            image_url=image_url,
            landing_url=landing_url,
            width=width,
            height=height,
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    creative = repo.get_creative(conn, new_id)
    assert creative is not None
    return creative


def _sub(value: str | None, field: str) -> str:
    value = value or ""
    if len(value) > 255:
        raise InvalidField(field, "must be at most 255 characters")
    return _printable(value, field)


def create_link(
    conn: Connection,
    *,
    program: Program,
    affiliate_id: int,
    landing_url: str | None = None,
    creative_id: int | None = None,
    subs: Sequence[str | None] = (),
) -> Link:
    """Create a tracking link for an approved affiliate, with optional deep link and subs."""
    membership = repo.get_membership(conn, program.id, affiliate_id)
    if membership is None or membership.status != "approved":
        raise Conflict("the affiliate is not approved in this program")
    if landing_url:
        check_deep_link(landing_url, program.allowed_domains, "landing_url")
    if creative_id is not None:
        creative = repo.get_creative(conn, creative_id)
        if creative is None or creative.program_id != program.id:
            raise InvalidField("creative_id", "is not a creative of this program")
        landing_url = landing_url or creative.landing_url
    if len(subs) > 5:
        raise InvalidField("subs", "at most 5 sub ids")
    sub_values = {f"sub{i + 1}": _sub(s, f"sub{i + 1}") for i, s in enumerate(subs)}
    now = utcnow()
    for _ in range(5):
        code = ids.new_link_code()
        if repo.get_link_by_code(conn, code) is None:
            break
    new_id = conn.execute(
        insert(t.links).values(
            code=code,
            program_id=program.id,
            affiliate_id=affiliate_id,
            creative_id=creative_id,
            landing_url=landing_url,
            status=ACTIVE,
            created_at=now,
            **sub_values,
        )
    ).inserted_primary_key[0]
    link = repo.get_link(conn, new_id)
    assert link is not None
    return link


def set_link_status(conn: Connection, link: Link, status: str, *, by: str) -> Link:
    """Pause or resume a link; ``by`` is the role acting (affiliate, merchant, operator).

    A link its merchant or the operator paused stays paused for its affiliate.
    """
    if status not in (ACTIVE, PAUSED):
        raise InvalidField("status", "must be active or paused")
    paused_by = conn.execute(select(t.links.c.paused_by).where(t.links.c.id == link.id)).scalar()
    if by == "affiliate" and paused_by in ("merchant", "operator") and status == ACTIVE:
        raise Forbidden(f"the {paused_by} paused this link; only they can resume it")
    conn.execute(
        update(t.links)
        .where(t.links.c.id == link.id)
        .values(status=status, paused_by=by if status == PAUSED else None)
    )
    bump_version(conn)
    updated = repo.get_link(conn, link.id)
    assert updated is not None
    return updated


def create_coupon(conn: Connection, *, program: Program, affiliate_id: int, code: str) -> Coupon:
    """Give an approved affiliate a coupon code; orders that use it are theirs."""
    code = (code or "").strip().upper()
    if not COUPON_CODE.match(code):
        raise InvalidField("code", "must be 2-64 letters, digits, - or _")
    membership = repo.get_membership(conn, program.id, affiliate_id)
    if membership is None or membership.status != "approved":
        raise Conflict("the affiliate is not approved in this program")
    if repo.get_coupon(conn, program.id, code) is not None:
        raise Conflict(f"coupon {code} already exists in this program")
    conn.execute(
        insert(t.coupons).values(
            program_id=program.id, affiliate_id=affiliate_id, code=code, created_at=utcnow()
        )
    )
    coupon = repo.get_coupon(conn, program.id, code)
    assert coupon is not None
    return coupon


def bump_version(conn: Connection) -> None:
    """Record that links, programs or memberships changed (tracker caches poll this)."""
    from tuike.storage.versions import bump

    bump(conn, CATALOG_VERSION_KEY)
