"""Conversions: attribute, screen, compute the commission, store once, move the status.

Reports are validated first (``conversion_requests.parse_request``); reading them back is
``conversion_queries``.

One call is one transaction (the caller opens ``db.write()``). Idempotency rests on the
unique key (program, event, order_id): a concurrent duplicate either finds the row or
loses the INSERT ... ON CONFLICT DO NOTHING race and then finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from tuike.domain import attribution as attr
from tuike.domain import ids
from tuike.domain.catalog import Program
from tuike.domain.commission import compute_commission
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.lifecycle import (
    APPROVED,
    INITIAL_STATUSES,
    PENDING,
    REJECTED,
    ConversionState,
    apply_status,
    initial_commission,
)
from tuike.domain.money import from_minor, to_minor
from tuike.domain.privacy import device_hash, hash_customer_id, ip_hash
from tuike.services import funding, fx, ledger, postbacks, screening
from tuike.services.clock import utcnow
from tuike.services.conversion_queries import conversion_body
from tuike.services.conversion_requests import ConversionRequest
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.storage.db import insert_ignore, upsert_add

SOURCES = ("api", "postback", "pixel")

# Statements built once: building and cache-keying SQLAlchemy expressions per call cost
# more than running them (about 0.4 ms each on SQLite).
_c = t.conversions.c
_FETCH = select(t.conversions).where(
    _c.program_id == bindparam("program_id"),
    _c.event == bindparam("event"),
    _c.order_id == bindparam("order_id"),
)
_FETCH_LOCKED = _FETCH.with_for_update()
_BY_ID = select(t.conversions).where(_c.id == bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()
_CLICK = select(t.clicks).where(t.clicks.c.id == bindparam("id"))
_MEMBERS = select(
    t.memberships.c.affiliate_id, t.memberships.c.status, t.memberships.c.group
).where(
    t.memberships.c.program_id == bindparam("program_id"),
    t.memberships.c.affiliate_id.in_(bindparam("ids", expanding=True)),
)
_LOG = insert(t.conversion_events)
_MERCHANT = select(t.programs.c.merchant_id).where(t.programs.c.id == bindparam("id"))
_RECRUITER = select(t.affiliates.c.recruited_by).where(t.affiliates.c.id == bindparam("id"))
_MOVE = (
    update(t.conversions)
    .where(
        _c.id == bindparam("row_id"),
        # Guard against a concurrent change since the row was read (compare-and-set).
        _c.status == bindparam("old_status"),
        _c.refunded_minor == bindparam("old_refunded"),
    )
    .values(
        status=bindparam("status"),
        commission_minor=bindparam("commission_minor"),
        refunded_minor=bindparam("refunded_minor"),
        updated_at=bindparam("updated_at"),
    )
)


@dataclass(frozen=True, slots=True)
class ConversionResult:
    """The answer to a conversion request: HTTP status and JSON body."""

    http_status: int
    body: dict[str, Any]


def _click_ref(conn: Connection, click_id: str | None) -> tuple[attr.ClickRef | None, Any]:
    """Return the click as attribution sees it, and its row.

    A filtered (invalid) click counts as no click: its ref is None, its row is returned so
    that the attribution note can say why (docs/fraud-rules.md).
    """
    if click_id is None:
        return None, None
    row = conn.execute(_CLICK, {"id": click_id}).first()
    if row is None or row.invalid:
        return None, row
    ref = attr.ClickRef(
        click_id=row.id,
        program_id=row.program_id,
        affiliate_id=row.affiliate_id,
        link_id=row.link_id,
        clicked_at=row.clicked_at,
    )
    return ref, row


def _filtered(row: Any) -> str:
    return f"filtered as invalid traffic (score {row.fraud_score}: {row.fraud_reasons})"


def _memberships(
    conn: Connection, program_id: int, candidates: set[int]
) -> dict[int, tuple[str, str]]:
    """Return affiliate id -> (membership status, group) for the candidates."""
    if not candidates:
        return {}
    rows = conn.execute(_MEMBERS, {"program_id": program_id, "ids": sorted(candidates)})
    return {r.affiliate_id: (r.status, r.group) for r in rows}


def _rollup_key(row: Any, status: str) -> dict[str, Any]:
    occurred = row.occurred_at
    return {
        "hour": occurred.replace(minute=0, second=0, microsecond=0),
        "program_id": row.program_id,
        "affiliate_id": row.affiliate_id or 0,
        "link_id": row.link_id or 0,
        "creative_id": row.creative_id or 0,
        "sub1": row.sub1,
        "sub2": row.sub2,
        "sub3": row.sub3,
        "sub4": row.sub4,
        "sub5": row.sub5,
        "country": row.country,
        "device": row.device,
        "event": row.event,
        "status": status,
        "currency": row.currency,
    }


def _add_rollup(conn: Connection, row: Any, status: str, sign: int, amount: int, comm: int) -> None:
    upsert_add(
        conn,
        t.conversion_rollups,
        t.CONVERSION_ROLLUP_KEYS,
        [
            _rollup_key(row, status)
            | {
                "conversions": sign,
                "amount_minor": sign * amount,
                "commission_minor": sign * comm,
            }
        ],
        ("conversions", "amount_minor", "commission_minor"),
    )


def _log_event(
    conn: Connection,
    row: Any,
    frm: str | None,
    to: str,
    refunded: int,
    commission: int,
    delta: int,
    source: str,
    at: datetime,
    reason: str = "",
) -> None:
    """Append a conversion event and queue its affiliate postback (same transaction).

    ``row`` is the conversion (before or after the move: only its fixed fields are read);
    ``to`` and ``commission`` are its new status and commission.
    """
    event_id = conn.execute(
        _LOG,
        {
            "reason": reason,
            "conversion_id": row.id,
            "at": at,
            "from_status": frm,
            "to_status": to,
            "refunded_minor": refunded,
            "commission_minor": commission,
            "commission_delta_minor": delta,
            "source": source,
        },
    ).inserted_primary_key[0]
    postbacks.enqueue_for_event(
        conn, row, int(event_id), status=to, commission_minor=commission, now=at
    )


def _fetch(conn: Connection, program_id: int, event: str, order_id: str, lock: bool) -> Any:
    stmt = _FETCH_LOCKED if lock and conn.dialect.name == "postgresql" else _FETCH
    return conn.execute(
        stmt, {"program_id": program_id, "event": event, "order_id": order_id}
    ).first()


def record_conversion(
    conn: Connection,
    program: Program,
    req: ConversionRequest,
    *,
    source: str,
    privacy_salt: str,
    now: datetime | None = None,
    checks: screening.ScreenSettings | None = None,
) -> ConversionResult:
    """Record a new conversion or move an existing one along its lifecycle.

    A new attributed conversion is screened by the conversion fraud rules (``checks``:
    the installation's thresholds, the defaults if None): its score and reasons are
    stored, and the program's settings may hold it for review or reject it at once.
    """
    now = now or utcnow()
    checks = checks or screening.ScreenSettings()
    existing = _fetch(conn, program.id, req.event, req.order_id, lock=True)
    req, fx_use = fx.in_program_currency(conn, req, program.currency, existing, now)
    if existing is not None:
        if _supersedes(existing, req, source):
            return _supersede(
                conn, existing, program, req, source, privacy_salt, now, fx_use, checks
            )
        return _update_status(conn, existing, req, source=source, now=now, program=program)
    if req.status not in INITIAL_STATUSES:
        raise Conflict(f"there is no {req.event} {req.order_id!r} to mark {req.status}")
    if req.refund_amount is not None:
        raise InvalidField("refund_amount", "is only allowed with status refunded")
    if req.event == "sale" and not req.amount_given:
        raise InvalidField("amount", "is required for a new sale")
    values, reason = _new_values(conn, program, req, source, privacy_salt, now, fx_use, checks)
    if insert_ignore(conn, t.conversions, values, ("program_id", "event", "order_id")) == 0:
        # Lost a race with a concurrent duplicate: it is stored now, answer as a repeat.
        existing = _fetch(conn, program.id, req.event, req.order_id, lock=True)
        return _update_status(conn, existing, req, source=source, now=now, program=program)
    row = SimpleNamespace(**values)
    status = row.status
    _log_event(
        conn, row, None, status, 0, row.commission_minor, row.commission_minor, source, now, reason
    )
    _add_rollup(conn, row, status, +1, row.amount_minor, row.commission_minor)
    ledger.post_conversion_move(
        conn,
        row,
        program.merchant_id,
        old_status=None,
        old_commission_minor=0,
        new_status=status,
        new_commission_minor=row.commission_minor,
        refunded_minor=0,
        now=now,
    )
    funding.check(conn, program.merchant_id, row.currency, now)
    return ConversionResult(201, conversion_body(row))


def held_for_fraud(row: Any, program: Program) -> bool:
    """Tell whether a conversion waits for review because of its fraud score.

    Pixel conversions of pending-review programs also wait (``needs_review``) but for the
    merchant's word only: the merchant's API may approve those, not these.
    """
    return (
        row.status == PENDING
        and bool(row.needs_review)
        and (row.fraud_score or 0) >= program.fraud.hold_score
    )


def _supersedes(existing: Any, req: ConversionRequest, source: str) -> bool:
    """Tell whether an authenticated report replaces what a browser pixel recorded.

    The pixel needs no key, so anyone can load it first with another amount or click;
    the merchant's own API call or signed postback for the same order is the truth.
    """
    return (
        existing.source == "pixel"
        and source != "pixel"
        and existing.status in (PENDING, APPROVED)
        and existing.refunded_minor == 0
        and req.status in INITIAL_STATUSES
        and req.amount_given
    )


def _supersede(
    conn: Connection,
    existing: Any,
    program: Program,
    req: ConversionRequest,
    source: str,
    privacy_salt: str,
    now: datetime,
    fx_use: fx.FxUse | None = None,
    checks: screening.ScreenSettings | None = None,
) -> ConversionResult:
    values, reason = _new_values(conn, program, req, source, privacy_salt, now, fx_use, checks)
    values |= {"id": existing.id, "created_at": existing.created_at}
    changed = {k: v for k, v in values.items() if k not in ("id", "created_at")}
    moved = conn.execute(
        update(t.conversions)
        .where(_c.id == existing.id, _c.status == existing.status, _c.source == "pixel")
        .values(**changed)
    ).rowcount
    if moved != 1:
        raise Conflict("the conversion changed meanwhile; send the update again")
    row = SimpleNamespace(**values)
    _log_event(
        conn,
        row,
        existing.status,
        row.status,
        0,
        row.commission_minor,
        row.commission_minor - existing.commission_minor,
        source,
        now,
        reason,
    )
    _add_rollup(
        conn, existing, existing.status, -1, existing.amount_minor, existing.commission_minor
    )
    _add_rollup(conn, row, row.status, +1, row.amount_minor, row.commission_minor)
    # The pixel's postings are reversed in full and the authoritative report's made anew
    # (its affiliate, amount or fee terms may differ).
    ledger.post_replacement(conn, existing, row, program.merchant_id, now=now)
    funding.check(conn, program.merchant_id, row.currency, now)
    return ConversionResult(200, conversion_body(row))


def _new_values(
    conn: Connection,
    program: Program,
    req: ConversionRequest,
    source: str,
    privacy_salt: str,
    now: datetime,
    fx_use: fx.FxUse | None = None,
    checks: screening.ScreenSettings | None = None,
) -> tuple[dict[str, Any], str]:
    """Attribute, screen and price a new conversion: the row to store, and the reason its
    first event is logged with (why the fraud rules held or rejected it, if they did)."""
    occurred_at = req.occurred_at or now

    explicit, click_row = _click_ref(conn, req.click_id)
    if explicit is not None and explicit.program_id != program.id:
        raise InvalidField("click_id", "belongs to another program")
    cookie, cookie_row = (None, None)
    if req.cookie_click_id and req.cookie_click_id != req.click_id:
        cookie, cookie_row = _click_ref(conn, req.cookie_click_id)
    coupon = repo.get_coupon(conn, program.id, req.coupon) if req.coupon else None
    if coupon is not None and coupon.status != "active":
        coupon = None  # a revoked code no longer attributes orders
    candidates = {c.affiliate_id for c in (explicit, cookie) if c is not None}
    if coupon is not None:
        candidates.add(coupon.affiliate_id)
    members = _memberships(conn, program.id, candidates)
    result = attr.attribute(
        program_id=program.id,
        occurred_at=occurred_at,
        window=program.cookie_window,
        explicit_click=explicit,
        cookie_click=cookie,
        coupon_affiliate_id=coupon.affiliate_id if coupon else None,
        eligible=frozenset(a for a, (st, _) in members.items() if st == "approved"),
    )
    note = result.reason
    if req.click_id and explicit is None:
        why = "unknown" if click_row is None else _filtered(click_row)
        note = "; ".join(filter(None, [f"click_id {req.click_id} {why}", note]))
    if cookie is None and cookie_row is not None:
        note = "; ".join(filter(None, [note, f"cookie click {_filtered(cookie_row)}"]))
    if req.coupon and coupon is None:
        note = "; ".join(filter(None, [f"coupon {req.coupon} unknown", note]))
    click = (
        click_row
        if result.method == "click_id"
        else (cookie_row if result.method == "cookie" else None)
    )
    group = ""
    if result.affiliate_id is not None:
        group = members[result.affiliate_id][1]
        computed = compute_commission(
            program.plan,
            event=req.event,
            amount=req.amount,
            currency=req.currency,
            items=req.items,
            group=group,
        ).total
    else:
        computed = Decimal(0)
    status = req.status
    # A browser is not trusted to reject; with pending review it cannot approve either,
    # and the conversion waits for the merchant instead of the lock period.
    review = source == "pixel" and program.pixel_pending_review
    if source == "pixel" and (review or status != APPROVED):
        status = PENDING
    customer_hash = hash_customer_id(req.customer_id, privacy_salt) if req.customer_id else None
    buyer_ip = ip_hash(req.ip, privacy_salt)
    buyer_device = device_hash(
        device_id=req.device_id, user_agent=req.user_agent, salt=privacy_salt
    )
    verdict = screening.Verdict()
    if result.affiliate_id is not None:
        verdict = screening.screen(
            conn,
            screening.Subject(
                program=program,
                event=req.event,
                order_id=req.order_id,
                occurred_at=occurred_at,
                attribution=result.method,
                affiliate_id=result.affiliate_id,
                amount_minor=to_minor(req.amount, req.currency),
                customer_id=req.customer_id,
                customer_hash=customer_hash,
                ip_hash=buyer_ip,
                device_hash=buyer_device,
                click=click,
                coupon=coupon.code if coupon else None,
                buyer_ip=req.ip,
                buyer_user_agent=req.user_agent,
            ),
            salt=privacy_salt,
            settings=checks or screening.ScreenSettings(),
            now=now,
        )
    if verdict.action == "reject":
        status = REJECTED
    elif verdict.action == "hold" and status != REJECTED:
        # Held: pending whatever was sent, out of the lock-period approval and of
        # settlement until the merchant or the operator releases or rejects it.
        status, review = PENDING, True
    commission = initial_commission(status, computed, req.currency)
    values = {
        "id": ids.new_ulid(now),
        "program_id": program.id,
        "event": req.event,
        "order_id": req.order_id,
        "status": status,
        "source": source,
        "needs_review": review,
        "affiliate_id": result.affiliate_id,
        "membership_group": group,
        "click_id": click.id if click is not None else None,
        "link_id": click.link_id if click is not None else None,
        "creative_id": click.creative_id if click is not None else None,
        **{
            f"sub{i}": (getattr(click, f"sub{i}") if click is not None else "") for i in range(1, 6)
        },
        "aff_click_id": click.aff_click_id if click is not None else "",
        "country": click.country if click is not None else "",
        "device": click.device if click is not None else "",
        "attribution": result.method,
        "attribution_note": note[:500],
        "currency": req.currency,
        "amount_minor": to_minor(req.amount, req.currency),
        "refunded_minor": 0,
        "original_commission_minor": to_minor(computed, req.currency),
        "commission_minor": to_minor(commission, req.currency),
        "items": [
            {"sku": i.sku, "category": i.category, "amount": str(i.amount), "quantity": i.quantity}
            for i in req.items
        ]
        or None,
        "coupon": coupon.code if coupon else (req.coupon.upper() if req.coupon else None),
        "customer_hash": customer_hash,
        "ip_hash": buyer_ip,
        "device_hash": buyer_device,
        "fraud_score": verdict.score,
        "fraud_reasons": verdict.reasons(),
        "occurred_at": occurred_at,
        "fee_rate_ppm": program.fee_rate_ppm,
        "fee_mode": program.fee_mode,
        "recruiter_id": _recruiter(conn, result.affiliate_id),
        "override_rate_ppm": program.override_rate_ppm,
        "original_currency": fx_use.currency if fx_use else None,
        "original_amount_minor": fx_use.amount_minor if fx_use else None,
        "fx_rate": str(fx_use.rate) if fx_use else None,
        "created_at": now,
        "updated_at": now,
    }
    # The merchant's own rejection needs no reason of ours.
    return values, verdict.event_reason() if req.status != REJECTED else ""


def _state(row: Any) -> ConversionState:
    return ConversionState(
        status=row.status,
        amount=from_minor(row.amount_minor, row.currency),
        refunded_amount=from_minor(row.refunded_minor, row.currency),
        original_commission=from_minor(row.original_commission_minor, row.currency),
        commission=from_minor(row.commission_minor, row.currency),
        currency=row.currency,
    )


def _update_status(
    conn: Connection,
    row: Any,
    req: ConversionRequest,
    *,
    source: str,
    now: datetime,
    program: Program,
) -> ConversionResult:
    if source == "pixel":
        # A browser can only report a sale, never move its status.
        return ConversionResult(200, conversion_body(row, duplicate=True))
    new = apply_status(_state(row), req.status, req.refund_amount)
    if new is None:
        return ConversionResult(200, conversion_body(row, duplicate=True))
    if new.status == APPROVED and held_for_fraud(row, program):
        # An automated approval is not a review (also for a twin that lost the race).
        raise Conflict(
            "the conversion is held for review by the fraud rules; release it "
            "(POST /api/v1/review/conversions/{id}/release) or reject it"
        )
    return ConversionResult(200, conversion_body(_apply(conn, row, new, source=source, now=now)))


def _recruiter(conn: Connection, affiliate_id: int | None) -> int | None:
    if affiliate_id is None:
        return None
    return conn.execute(_RECRUITER, {"id": affiliate_id}).scalar()


def _merchant_of(conn: Connection, program_id: int) -> int:
    return int(conn.execute(_MERCHANT, {"id": program_id}).scalar_one())


def _apply(
    conn: Connection,
    row: Any,
    new: ConversionState,
    *,
    source: str,
    now: datetime,
    reason: str = "",
) -> Any:
    commission = to_minor(new.commission, new.currency)
    refunded = to_minor(new.refunded_amount, new.currency)
    moved = conn.execute(
        _MOVE,
        {
            "row_id": row.id,
            "old_status": row.status,
            "old_refunded": row.refunded_minor,
            "status": new.status,
            "commission_minor": commission,
            "refunded_minor": refunded,
            "updated_at": now,
        },
    ).rowcount
    if moved != 1:
        raise Conflict("the conversion changed meanwhile; send the update again")
    _log_event(
        conn,
        row,
        row.status,
        new.status,
        refunded,
        commission,
        commission - row.commission_minor,
        source,
        now,
        reason,
    )
    _add_rollup(
        conn, row, row.status, -1, row.amount_minor - row.refunded_minor, row.commission_minor
    )
    _add_rollup(conn, row, new.status, +1, row.amount_minor - refunded, commission)
    merchant_id = _merchant_of(conn, row.program_id)
    ledger.post_conversion_move(
        conn,
        row,
        merchant_id,
        old_status=row.status,
        old_commission_minor=row.commission_minor,
        new_status=new.status,
        new_commission_minor=commission,
        refunded_minor=refunded,
        now=now,
    )
    funding.check(conn, merchant_id, row.currency, now)
    fields = dict(row._mapping) if hasattr(row, "_mapping") else vars(row)
    return SimpleNamespace(
        **fields
        | {
            "status": new.status,
            "commission_minor": commission,
            "refunded_minor": refunded,
            "updated_at": now,
        }
    )


def approve_due_conversions(
    conn: Connection, *, now: datetime | None = None, limit: int = 1000
) -> int:
    """Approve pending conversions whose lock period has passed; return how many.

    The period runs from when the conversion was recorded; conversions waiting for a
    merchant's review (pixel conversions of pending-review programs) are left alone.
    """
    now = now or utcnow()
    approved = 0
    for program in repo.list_programs(conn):
        cutoff = now - timedelta(days=program.lock_days)
        rows = conn.execute(
            select(t.conversions)
            .where(
                t.conversions.c.program_id == program.id,
                t.conversions.c.status == PENDING,
                t.conversions.c.needs_review.is_(False),
                # From when tuike learned of it: occurred_at is the client's word, and a
                # backdated order must still wait out its refund window.
                t.conversions.c.created_at <= cutoff,
            )
            .order_by(t.conversions.c.id)
            .limit(limit - approved)
            # Rows being refunded right now are skipped; the next run approves them if due.
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            new = apply_status(_state(row), APPROVED)
            if new is not None:
                _apply(conn, row, new, source="lock", now=now)
                approved += 1
        if approved >= limit:
            break
    return approved


REVIEW_MOVES = ("approved", "rejected")


def review_conversion(
    conn: Connection, conversion_id: str, status: str, *, reason: str, by: str
) -> Any:
    """Approve or reject a pending conversion by hand, with the reviewer's reason.

    ``by`` is the source written to the event log (``merchant``, ``operator``).
    """
    if status not in REVIEW_MOVES:
        raise InvalidField("status", "must be approved or rejected")
    reason = reason.strip()
    if len(reason) > 500 or any(ord(ch) < 32 for ch in reason):
        raise InvalidField("reason", "must be at most 500 printable characters")
    if status == "rejected" and not reason:
        raise InvalidField("reason", "is required to reject a conversion")
    row = conn.execute(
        _BY_ID_LOCKED if conn.dialect.name == "postgresql" else _BY_ID,
        {"id": conversion_id},
    ).first()
    if row is None:
        raise NotFound("conversion")
    if row.status != "pending":
        raise Conflict(f"the conversion is {row.status}; only pending ones are reviewed")
    new = apply_status(_state(row), status, None)
    if new is None:  # pragma: no cover - pending → approved/rejected always moves
        return row
    return _apply(conn, row, new, source=by, now=utcnow(), reason=reason)


__all__ = [
    "SOURCES",
    "ConversionResult",
    "approve_due_conversions",
    "record_conversion",
]
