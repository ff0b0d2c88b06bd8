"""Screening a new attributed conversion: gather the evidence of the conversion rules,
score it, and say what the program's fraud settings make of the score.

It runs inside ``record_conversion``'s transaction, so it stays cheap: the click row and
the coupon are already in hand, and each rule costs at most one indexed read (the
affiliate by id and its identity marks, its recent conversions, its click rollups). A
rule switched off for the program, or by a threshold of 0, costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select

from tuike.domain import ids
from tuike.domain.catalog import Program
from tuike.domain.fraud import Signal, score
from tuike.domain.fraud import conversion as rules
from tuike.domain.privacy import device_hash, identity_hash, ip_hash, store_ip
from tuike.services import identity
from tuike.storage import tables as t

if TYPE_CHECKING:
    from tuike.config import Settings

_c = t.conversions.c
_AFFILIATE = select(t.affiliates.c.email, t.affiliates.c.payout_account).where(
    t.affiliates.c.id == bindparam("id")
)
_k = t.clicks.c
# An address from which this many browsers clicked the owner's links is shared (a carrier
# NAT, an office): it does not tie a buyer to a click.
SHARED_ADDRESS_BROWSERS = 5
# The owner's clickers from the buyer's address: the (affiliate, ip, time) index bounds
# the read to that address's clicks, and one more than the shared limit is enough.
_ADDRESS_CLICKERS = (
    select(_k.visitor, _k.user_agent)
    .where(
        _k.affiliate_id == bindparam("affiliate_id"),
        _k.ip == bindparam("ip"),
        _k.clicked_at >= bindparam("since"),
        _k.clicked_at <= bindparam("until"),
        _k.program_id == bindparam("program_id"),
    )
    .distinct()
    .limit(SHARED_ADDRESS_BROWSERS + 1)
)
_r = t.click_rollups.c
# The program is picked out by CASE, not WHERE, so that the read goes through the
# affiliate's (affiliate_id, hour) index: it is bounded by the owner's own traffic (little,
# for a leaked code), never by the whole program's.
_OWNER_CLICKS = select(
    func.coalesce(func.sum(case((_r.program_id == bindparam("program_id"), _r.clicks), else_=0)), 0)
).where(
    _r.affiliate_id == bindparam("affiliate_id"),
    _r.hour >= bindparam("since"),
    _r.hour <= bindparam("until"),
)
MAX_DUPLICATES = 5


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    """The installation's side of screening: rule thresholds and how clicks keep IPs."""

    thresholds: rules.Thresholds = field(default_factory=rules.Thresholds)
    click_ip_mode: str = "truncated"  # TUIKE_IP_STORAGE: only full or hashed IPs compare

    @classmethod
    def of(cls, settings: Settings) -> ScreenSettings:
        """Return the screening settings of an installation's settings."""
        return cls(settings.conversion_thresholds(), settings.ip_storage)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The signals of a conversion, its score and the action they call for."""

    signals: tuple[Signal, ...] = ()
    score: int = 0
    action: str = "none"  # none | hold | reject

    def reasons(self) -> list[dict[str, Any]] | None:
        """Return the signals in the stored JSON form (None when nothing fired)."""
        return [s.as_dict() for s in self.signals] or None

    def event_reason(self) -> str:
        """Return the reason written to the conversion's event log, if any."""
        codes = ", ".join(s.code for s in self.signals)
        if self.action == "reject":
            return f"rejected by the fraud rules (score {self.score}): {codes}"[:500]
        if self.action == "hold":
            return f"held for review (score {self.score}): {codes}"[:500]
        return ""


@dataclass(frozen=True, slots=True)
class Subject:
    """The new conversion being screened (what ``_new_values`` has worked out)."""

    program: Program
    event: str
    order_id: str
    occurred_at: datetime
    attribution: str
    affiliate_id: int
    amount_minor: int
    customer_id: str | None
    customer_hash: str | None
    ip_hash: str | None
    device_hash: str | None
    click: Any = None  # the attributing click row
    coupon: str | None = None
    buyer_ip: str | None = None  # as reported (coupon leakage compares it with clicks)
    buyer_user_agent: str | None = None


def screen(
    conn: Connection, subject: Subject, *, salt: str, settings: ScreenSettings, now: datetime
) -> Verdict:
    """Score a new attributed conversion and decide: none, hold or reject."""
    config = subject.program.fraud
    thresholds = settings.thresholds
    off = config.disabled
    click = subject.click
    evidence = rules.Evidence(
        event=subject.event,
        attribution=subject.attribution,
        ctit=subject.occurred_at - click.clicked_at if click is not None else None,
        matches=()
        if rules.SELF_REFERRAL in off or thresholds.self_referral_days <= 0
        else _self_matches(conn, subject, salt, settings, now),
        coupon=subject.coupon,
        window_days=subject.program.cookie_days,
    )
    if rules.DUPLICATE not in off and thresholds.duplicate_window > timedelta(0):
        duplicates, basis = _duplicates(conn, subject, thresholds.duplicate_window, now)
        evidence = replace(evidence, duplicates=duplicates, duplicate_basis=basis)
    if (
        rules.COUPON_LEAKAGE not in off
        and thresholds.coupon_min_clicks > 0
        and subject.attribution == "coupon"
    ):
        clicks = _owner_clicks(conn, subject)
        clicked = (
            _buyer_clicked(conn, subject, salt, settings.click_ip_mode)
            if clicks >= thresholds.coupon_min_clicks
            else None
        )
        evidence = replace(evidence, coupon_owner_clicks=clicks, coupon_buyer=clicked)
    signals = tuple(rules.evaluate(evidence, thresholds, off))
    total = score(signals)
    return Verdict(signals, total, rules.action(total, config.hold_score, config.reject_score))


def _self_matches(
    conn: Connection, subject: Subject, salt: str, settings: ScreenSettings, now: datetime
) -> tuple[rules.Match, ...]:
    """Compare the buyer's and the click's identities with the affiliate's own."""
    # hash -> the matches it would make: (kind of mark it must be, source, weak)
    wanted: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}

    def want(value: str | None, kinds: tuple[str, ...], source: str) -> None:
        if value:
            wanted.setdefault(value, []).append((kinds, source, value.startswith("u:")))

    want(subject.ip_hash, ("ip",), "buyer")
    want(subject.device_hash, ("device",), "buyer")
    click = subject.click
    if click is not None:
        stored = click.ip or ""
        if stored.startswith("h:"):
            want(stored, ("ip",), "click")  # hashed mode: the same hash as ip_hash
        elif settings.click_ip_mode == "full":
            want(ip_hash(stored, salt), ("ip",), "click")
        browser = device_hash(device_id=None, user_agent=click.user_agent, salt=salt)
        want(browser, ("device",), "click")
    customer = identity_hash(subject.customer_id, salt) if subject.customer_id else None
    want(customer, ("email", "payout"), "buyer")

    found: set[rules.Match] = set()
    if customer is not None:
        # The affiliate's current email and payout account, besides the marked ones.
        row = conn.execute(_AFFILIATE, {"id": subject.affiliate_id}).first()
        if row is not None:
            if row.email and identity_hash(row.email, salt) == customer:
                found.add(rules.Match("email", "buyer"))
            if row.payout_account and identity_hash(row.payout_account, salt) == customer:
                found.add(rules.Match("payout", "buyer"))
    marks = identity.matching(
        conn,
        "affiliate",
        subject.affiliate_id,
        wanted,
        now=now,
        max_age=timedelta(days=settings.thresholds.self_referral_days),
    )
    for mark in marks:
        for kinds, source, weak in wanted.get(mark.value_hash, ()):
            if mark.kind in kinds:
                found.add(rules.Match(mark.kind, source, weak))
    return tuple(sorted(found, key=lambda m: (m.kind, m.source, m.weak)))


def _duplicates(
    conn: Connection, subject: Subject, window: timedelta, now: datetime
) -> tuple[tuple[str, ...], str]:
    """Return the affiliate's other orders of this amount by the same buyer, recently.

    The same buyer is the same customer id, the same device id, or, for orders with an
    amount, the same address and browser. An address alone is shared by everyone behind
    a carrier NAT, and events without an amount (installs, leads) all "match" in amount,
    so for those an address proves nothing.
    """
    same_buyer = []
    if subject.customer_hash:
        same_buyer.append(_c.customer_hash == subject.customer_hash)
    device = subject.device_hash
    if device and device.startswith("d:"):
        same_buyer.append(_c.device_hash == device)
    if subject.ip_hash and subject.amount_minor > 0:
        address = _c.ip_hash == subject.ip_hash
        same_buyer.append(and_(address, _c.device_hash == device) if device else address)
    if not same_buyer:
        return (), ""
    # Ids are time-ordered ULIDs (made when recorded): the window is a range of the
    # (affiliate_id, id) index.
    floor = ids.ulid_floor(now - window)
    rows = conn.execute(
        select(_c.order_id, _c.customer_hash, _c.device_hash)
        .where(
            _c.affiliate_id == subject.affiliate_id,
            _c.id >= floor,
            _c.program_id == subject.program.id,
            _c.event == subject.event,
            _c.amount_minor == subject.amount_minor,
            _c.order_id != subject.order_id,
            or_(*same_buyer),
        )
        .order_by(_c.id.desc())
        .limit(MAX_DUPLICATES)
    ).all()
    if not rows:
        return (), ""
    if subject.customer_hash and any(r.customer_hash == subject.customer_hash for r in rows):
        basis = "customer"
    elif device and device.startswith("d:") and any(r.device_hash == device for r in rows):
        basis = "device"
    else:
        basis = "address"
    return tuple(r.order_id for r in rows), basis


def _owner_clicks(conn: Connection, subject: Subject) -> int:
    """Return the clicks the affiliate sent the program in the cookie window (rollups)."""
    until = subject.occurred_at
    since = (until - subject.program.cookie_window).replace(minute=0, second=0, microsecond=0)
    return int(
        conn.execute(
            _OWNER_CLICKS,
            {
                "affiliate_id": subject.affiliate_id,
                "program_id": subject.program.id,
                "since": since,
                "until": until,
            },
        ).scalar_one()
    )


def _buyer_clicked(conn: Connection, subject: Subject, salt: str, ip_mode: str) -> str | None:
    """Say whether the buyer clicked the coupon owner's links in the cookie window.

    The buyer is its address (in the form the click log keeps it) and browser: ``clicked``
    when exactly one visitor (``tk_v``) clicked from them, ``no`` when none did, and
    ``shared`` when the address is shared (several browsers, or several visitors on the
    same browser: people behind one carrier NAT on the same phone model), which then ties
    no buyer to a click. None when the report has no address or browser, or the click
    log keeps no addresses.
    """
    ip = store_ip(subject.buyer_ip, ip_mode, salt) if subject.buyer_ip else None
    agent = (subject.buyer_user_agent or "")[:512]  # as the click log keeps it
    if ip is None or not agent.strip():
        return None
    until = subject.occurred_at
    rows = conn.execute(
        _ADDRESS_CLICKERS,
        {
            "affiliate_id": subject.affiliate_id,
            "ip": ip,
            "since": until - subject.program.cookie_window,
            "until": until,
            "program_id": subject.program.id,
        },
    ).all()
    same = sum(1 for r in rows if r.user_agent == agent)
    if len(rows) > SHARED_ADDRESS_BROWSERS or same > 1:
        return rules.COUPON_SHARED
    return rules.COUPON_CLICKED if same == 1 else rules.COUPON_NOT_CLICKED
