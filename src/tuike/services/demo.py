"""The demo world: merchants, programs, affiliates, a month of traffic and its sales.

Everything goes through the service functions, exactly as the API and the tracker would
use them, so the demo also shows that the rules hold at scale. Random choices come from
one ``random.Random(seed)``: the same seed gives the same world (ids and codes differ).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, func, select

from tuike.config import Settings
from tuike.domain.catalog import Membership, Program
from tuike.domain.tracking import ClickParams
from tuike.services import catalog
from tuike.services.clicks import Resolved, UniqueFilter, build_click, record_clicks
from tuike.services.clock import utcnow
from tuike.services.conversions import approve_due_conversions, parse_request, record_conversion
from tuike.services.demo_world import (
    CAMPAIGNS,
    DAYS,
    EMAIL_DOMAIN,
    MERCHANTS,
    PASSWORD,
    PROGRAMS,
    TZ,
    TZ_NAME,
    AffiliateProfile,
    ProgramSpec,
    VisitMaker,
    affiliate_profiles,
    delay,
    hour_slots,
    order,
    referer_for,
    weighted_sample,
)
from tuike.services.keys import create_key
from tuike.services.users import create_user
from tuike.storage import tables as t
from tuike.storage.db import Database

Progress = Callable[[str, int, int], None]
CLICKS, AFFILIATES = 300_000, 200
CLICK_BATCH, CONVERSION_BATCH = 5_000, 500
REPEAT = 0.2  # share of clicks that repeat a recent visitor's click on the same link
NO_SUBS = ("", "", "", "", "")
CENT = Decimal("0.01")
ORDER_PREFIX = {
    "beauty": "HY",
    "beauty-global": "HYG",
    "electronics": "GM",
    "outlet": "GMO",
    "app": "LD",
    "game": "SS",
}


class DemoError(Exception):
    """The demo world cannot be loaded here."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo created, and the keys and logins to explore it with."""

    merchants: int
    programs: int
    affiliates: int
    links: int
    clicks: int
    unique_clicks: int
    bot_clicks: int
    conversions: int
    attributed: int
    refunded: int
    keys: tuple[tuple[str, str], ...]
    logins: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class _Link:
    """A link resolved once, with how its traffic behaves."""

    resolved: Resolved
    program: int
    kind: str
    referer: str
    bot_rate: float
    weight: float
    deep: ClickParams | None


@dataclass(slots=True)
class _World:
    merchants: list[tuple[int, str, str]]
    programs: list[Program]
    profiles: list[AffiliateProfile]
    affiliate_ids: list[int]
    links: list[_Link]
    coupons: list[tuple[int, str, float]]
    to_ban: list[Membership]
    top: list[int]


def load_demo(
    db: Database,
    settings: Settings,
    *,
    seed: int = 7,
    progress: Progress | None = None,
    now: datetime | None = None,
    scale: float = 1.0,
) -> DemoSummary:
    """Load the demo world into an empty database and return what was made."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with db.read() as conn:
        if conn.execute(select(func.count()).select_from(t.merchants)).scalar():
            raise DemoError("the database already has merchants; load the demo into an empty one")
    report = progress or (lambda stage, done, total: None)
    rng = random.Random(seed)
    world = _build_catalog(db, rng, max(6, round(AFFILIATES * scale)), report)
    planned, counts = _clicks(db, settings, rng, world, round(CLICKS * scale), now, report)
    created, attributed, refunded = _conversions(db, settings, rng, world, planned, now, report)
    keys, logins = _finish(db, world)
    report("done", 1, 1)
    return DemoSummary(
        merchants=len(world.merchants),
        programs=len(world.programs),
        affiliates=len(world.affiliate_ids),
        links=len(world.links),
        clicks=counts[0],
        unique_clicks=counts[1],
        bot_clicks=counts[2],
        conversions=created,
        attributed=attributed,
        refunded=refunded,
        keys=keys,
        logins=logins,
    )


def _build_catalog(db: Database, rng: random.Random, n_affiliates: int, report: Progress) -> _World:
    """Create merchants, programs, creatives, affiliates, memberships, links and coupons."""
    profiles = affiliate_profiles(rng, n_affiliates)
    rank = sorted(range(n_affiliates), key=lambda i: -profiles[i].weight)
    plan = _memberships(rng, profiles, rank)
    with db.write() as conn:
        merchants = {
            key: catalog.create_merchant(conn, name=name, timezone=TZ_NAME)
            for key, name, _ in MERCHANTS
        }
        programs = [
            catalog.create_program(
                conn,
                merchant_id=merchants[s.merchant].id,
                currency="CNY",
                name=s.name,
                landing_url=s.landing_url,
                fallback_url=s.fallback_url,
                allowed_domains=list(s.allowed_domains),
                cookie_days=s.cookie_days,
                lock_days=s.lock_days,
                commission_plan=s.plan,
                category=s.category,
            )
            for s in PROGRAMS
        ]
        creatives = [_creatives(conn, p, s) for p, s in zip(programs, PROGRAMS, strict=True)]
        affiliate_ids = []
        for i, profile in enumerate(profiles):
            affiliate = catalog.create_affiliate(
                conn,
                name=profile.name,
                email=profile.email,
                timezone=profile.timezone,
                channels=profile.channels,
            )
            affiliate_ids.append(affiliate.id)
            if i % 25 == 0:
                report("catalog", i, n_affiliates)
        approved_pop = [0.0] * n_affiliates
        for (ai, pi), (status, _, _) in plan.items():
            if status == "approved":
                approved_pop[ai] += PROGRAMS[pi].popularity
        links: list[_Link] = []
        to_ban: list[Membership] = []
        for (ai, pi), (status, group, ban) in plan.items():
            program, profile = programs[pi], profiles[ai]
            membership = catalog.apply_to_program(
                conn, program=program, affiliate_id=affiliate_ids[ai]
            )
            if status == "applied":
                continue
            membership = catalog.decide_membership(conn, membership, status=status, group=group)
            if status != "approved":
                continue
            if ban:
                to_ban.append(membership)
            n_links = rng.choice((1, 1, 2, 2, 3))
            weight = profile.weight * PROGRAMS[pi].popularity / approved_pop[ai] / n_links
            for _ in range(n_links):
                share = weight * rng.uniform(0.5, 1.5)
                link = _link(conn, rng, program, pi, profile, affiliate_ids[ai], creatives, share)
                links.append(replace(link, bot_rate=0.35) if ban else link)
        coupons = _coupons(conn, rng, programs, profiles, affiliate_ids, rank, plan)
    report("catalog", n_affiliates, n_affiliates)
    return _World(
        merchants=[(merchants[k].id, name, email) for k, name, email in MERCHANTS],
        programs=programs,
        profiles=profiles,
        affiliate_ids=affiliate_ids,
        links=links,
        coupons=coupons,
        to_ban=to_ban,
        top=rank[:3],
    )


def _memberships(
    rng: random.Random, profiles: list[AffiliateProfile], rank: list[int]
) -> dict[tuple[int, int], tuple[str, str | None, bool]]:
    """Plan who applies where, the answers, the commission groups and the later bans."""
    position = {ai: r for r, ai in enumerate(rank)}
    popularity = [s.popularity for s in PROGRAMS]
    status: dict[tuple[int, int], str] = {}
    for ai in range(len(profiles)):
        k = rng.choices((1, 2, 3, 4), weights=(35, 30, 20, 15))[0]
        for pi in weighted_sample(rng, range(len(PROGRAMS)), popularity, k):
            r = 0.0 if position[ai] < 10 else rng.random()  # top performers are in
            status[(ai, pi)] = "approved" if r < 0.84 else "applied" if r < 0.93 else "rejected"
    for pi in range(len(PROGRAMS)):
        if not any(s == "approved" and p == pi for (_, p), s in status.items()):
            status[(rank[0], pi)] = "approved"
    plan: dict[tuple[int, int], tuple[str, str | None, bool]] = {
        key: (s, None, False) for key, s in status.items()
    }
    for pi, spec in enumerate(PROGRAMS):
        if spec.group:
            members = [a for (a, p), s in status.items() if p == pi and s == "approved"]
            members.sort(key=lambda a: position[a])
            for ai in members[: max(1, len(members) // 12)]:
                plan[(ai, pi)] = ("approved", spec.group, False)
    candidates = [key for key, (s, group, _) in plan.items() if s == "approved" and not group]
    candidates = [key for key in candidates if position[key[0]] >= 10]
    for key in rng.sample(candidates, min(2, len(candidates))):
        plan[key] = ("approved", None, True)
    return plan


def _creatives(conn: Connection, program: Program, spec: ProgramSpec) -> list[int]:
    """Give a program two banners, a text link and a QR code."""
    cdn = f"https://cdn.example.com/demo/{spec.key}"
    deep = f"https://{spec.allowed_domains[0]}/{spec.deep_paths[0]}"
    made = [
        catalog.create_creative(
            conn, program=program, kind="banner", name="Banner 728×90",
            image_url=f"{cdn}-728x90.png", width=728, height=90,
        ),
        catalog.create_creative(
            conn, program=program, kind="banner", name="Banner 300×250",
            image_url=f"{cdn}-300x250.png", landing_url=deep, width=300, height=250,
        ),
        catalog.create_creative(conn, program=program, kind="text", name=f"文字链 · {spec.name}"),
        catalog.create_creative(
            conn, program=program, kind="qr", name="二维码 QR", image_url=f"{cdn}-qr.png",
            width=256, height=256,
        ),
    ]  # fmt: skip
    return [c.id for c in made]


def _link(
    conn: Connection,
    rng: random.Random,
    program: Program,
    pi: int,
    profile: AffiliateProfile,
    affiliate_id: int,
    creatives: list[list[int]],
    weight: float,
) -> _Link:
    """Create one tracking link on one of the affiliate's channels."""
    spec = PROGRAMS[pi]
    ci = rng.randrange(len(profile.channels))
    channel, placement = profile.channels[ci], profile.placements[ci]
    product = f"https://{spec.allowed_domains[0]}/{rng.choice(spec.deep_paths)}"
    r = rng.random()
    link = catalog.create_link(
        conn,
        program=program,
        affiliate_id=affiliate_id,
        landing_url=product if r < 0.25 else None,
        creative_id=rng.choice(creatives[pi]) if 0.25 <= r < 0.55 else None,
        subs=(placement, rng.choice(CAMPAIGNS)),
    )
    kind = channel["kind"]
    # Crawlers find links on open pages more than in chats.
    bot_rate = 0.025 if kind in ("website", "blog", "forum") else 0.008
    deep = None
    if kind in ("website", "blog", "forum"):
        deep = ClickParams(subs=NO_SUBS, deep_link=product, aff_click_id="")
    return _Link(
        resolved=Resolved(link=link, program=program, membership_ok=True),
        program=pi,
        kind=kind,
        referer=referer_for(channel, placement),
        bot_rate=bot_rate,
        weight=weight,
        deep=deep,
    )


def _coupons(
    conn: Connection,
    rng: random.Random,
    programs: list[Program],
    profiles: list[AffiliateProfile],
    affiliate_ids: list[int],
    rank: list[int],
    plan: dict[tuple[int, int], tuple[str, str | None, bool]],
) -> list[tuple[int, str, float]]:
    """Give a few leading affiliates their own coupon codes in the shops."""
    made: list[tuple[int, str, float]] = []
    shops = [pi for pi, s in enumerate(PROGRAMS) if s.goods and not s.lock_days >= 30]
    for ai in rank[:12]:
        for pi in shops:
            if len(made) >= 5 or plan.get((ai, pi), ("",))[0] != "approved":
                continue
            if plan[(ai, pi)][2]:
                continue
            code = f"{profiles[ai].stem}{rng.choice((8, 10, 15, 20, 88))}"
            if any(c == code and p == pi for p, c, _ in made):
                continue
            catalog.create_coupon(
                conn, program=programs[pi], affiliate_id=affiliate_ids[ai], code=code
            )
            made.append((pi, code, profiles[ai].weight))
    return made


def _clicks(
    db: Database,
    settings: Settings,
    rng: random.Random,
    world: _World,
    total: int,
    now: datetime,
    report: Progress,
) -> tuple[list[tuple[datetime, int, str, str]], tuple[int, int, int]]:
    """Record a month of clicks in time order; return the conversions they lead to."""
    slots = hour_slots(now)
    per_slot = [0] * len(slots)
    for i in rng.choices(
        range(len(slots)), cum_weights=list(accumulate(s[2] for s in slots)), k=total
    ):
        per_slot[i] += 1
    links = world.links
    link_cw = list(accumulate(link.weight for link in links))
    link_range = range(len(links))
    rates = [list(accumulate(r for _, r in spec.primary)) for spec in PROGRAMS]
    events = [[e for e, _ in spec.primary] for spec in PROGRAMS]
    visits = VisitMaker(rng)
    uniques = UniqueFilter(
        window=timedelta(hours=settings.unique_window_hours),
        max_entries=settings.unique_cache_size,
    )
    plain = ClickParams(subs=NO_SUBS, deep_link=None, aff_click_id="")
    recent: deque[tuple[int, Any]] = deque(maxlen=3000)
    planned: list[tuple[datetime, int, str, str]] = []
    batch: list[Any] = []
    done = unique = bots = 0
    report("clicks", 0, total)
    for (begin, seconds, _), n in zip(slots, per_slot, strict=True):
        if not n:
            continue
        offsets = sorted([rng.random() * seconds for _ in range(n)])
        for offset, li in zip(
            offsets, rng.choices(link_range, cum_weights=link_cw, k=n), strict=True
        ):
            at = begin + timedelta(seconds=offset)
            if recent and rng.random() < REPEAT:
                li, visit = recent[rng.randrange(len(recent))]
                link = links[li]
            else:
                link = links[li]
                if rng.random() < link.bot_rate:
                    visit = visits.bot()
                else:
                    visit = visits.human(link.kind, link.referer)
                recent.append((li, visit))
            params = plain
            if link.deep is not None and rng.random() < 0.1:
                params = link.deep
            elif link.kind == "app":
                params = ClickParams(
                    subs=NO_SUBS, deep_link=None, aff_click_id=f"{rng.getrandbits(40):010x}"
                )
            click = build_click(
                link.resolved,
                params,
                visit,
                at=at,
                ip_storage=settings.ip_storage,
                privacy_salt=settings.privacy_salt,
                uniques=uniques,
            )
            batch.append(click)
            if len(batch) >= CLICK_BATCH:
                done += _flush(db, batch)
                report("clicks", done, total)
            if click.is_bot:
                bots += 1
                continue
            unique += click.is_unique
            r = rng.random()
            cw = rates[link.program]
            if r < cw[-1]:
                event = events[link.program][next(i for i, c in enumerate(cw) if r < c)]
                planned.append((at + delay(rng, event), li, event, click.id))
    done += _flush(db, batch)
    report("clicks", done, total)
    return planned, (done, unique, bots)


def _flush(db: Database, batch: list[Any]) -> int:
    """Write a batch of clicks with their rollups in one transaction; empty the batch."""
    n = len(batch)
    if n:
        with db.write() as conn:
            record_clicks(conn, batch)
        batch.clear()
    return n


def _conversions(
    db: Database,
    settings: Settings,
    rng: random.Random,
    world: _World,
    planned: list[tuple[datetime, int, str, str]],
    now: datetime,
    report: Progress,
) -> tuple[int, int, int]:
    """Send the month's conversions, refunds and rejections in time order, as a shop would."""
    events = _schedule(rng, world, planned, now)
    max_future = timedelta(seconds=settings.max_future_seconds)
    created = attributed = refunded = 0
    report("conversions", 0, len(events))
    for start in range(0, len(events), CONVERSION_BATCH):
        with db.write() as conn:
            for at, _, kind, pi, data in events[start : start + CONVERSION_BATCH]:
                if kind == "tick":
                    # The nightly job: approve what has passed its lock period.
                    while approve_due_conversions(conn, now=at):
                        pass
                    continue
                program = world.programs[pi]
                req = parse_request(data, program, now=at, max_future=max_future)
                result = record_conversion(
                    conn, program, req, source="api", privacy_salt=settings.privacy_salt, now=at
                )
                if result.http_status == 201:
                    created += 1
                    attributed += bool(result.body["attributed"])
                elif kind == "refund" and not result.body.get("duplicate"):
                    refunded += 1
        report("conversions", min(start + CONVERSION_BATCH, len(events)), len(events))
    with db.write() as conn:
        while approve_due_conversions(conn, now=now):
            pass
    return created, attributed, refunded


Event = tuple[datetime, int, str, int, dict[str, Any] | None]


def _schedule(
    rng: random.Random,
    world: _World,
    planned: list[tuple[datetime, int, str, str]],
    now: datetime,
) -> list[Event]:
    """Turn planned conversions into time-ordered requests, with nightly approval runs."""
    events: list[Event] = []
    numbers = [0] * len(PROGRAMS)

    def convert(occurred: datetime, pi: int, event: str, **evidence: str) -> None:
        if occurred >= now:
            return  # it has not happened yet
        spec = PROGRAMS[pi]
        numbers[pi] += 1
        local = occurred.astimezone(TZ)
        order_id = f"{ORDER_PREFIX[spec.key]}-{event[0].upper()}{local:%y%m%d}{numbers[pi]:06d}"
        data: dict[str, Any] = {
            "event": event,
            "order_id": order_id,
            "currency": "CNY",
            "status": "pending",
            "occurred_at": local.isoformat(timespec="seconds"),
            "amount": "0.00",
            **evidence,
        }
        if event == "sale":
            data["amount"], items = order(rng, spec)
            if items:
                data["items"] = items
            data["customer_id"] = f"cust-{rng.randrange(40_000):05d}"
        elif event == "purchase":
            data["amount"] = f"{rng.choice(spec.purchase_amounts)}.00"
        reported = min(now, occurred + timedelta(seconds=rng.uniform(3, 120)))
        events.append((reported, len(events), "new", pi, data))
        _aftermath(rng, spec, pi, data, occurred, reported, now, events)

    for occurred, li, event, click_id in planned:
        pi = world.links[li].program
        convert(occurred, pi, event, click_id=click_id)
        for after, follow, probability in PROGRAMS[pi].followups:
            if after == event and rng.random() < probability:
                later = (
                    delay(rng, follow)
                    if follow == "register"
                    else timedelta(hours=72 * rng.random())
                )
                convert(occurred + later, pi, follow, click_id=click_id)
    # Orders placed with an affiliate's coupon code and no click at all.
    start = now - timedelta(days=DAYS)
    if world.coupons:
        cw = list(accumulate(w for _, _, w in world.coupons))
        for pi, code, _ in rng.choices(
            world.coupons, cum_weights=cw, k=max(3, len(planned) // 150)
        ):
            convert(start + (now - start) * rng.random(), pi, "sale", coupon=code)
    night = datetime.combine(start.astimezone(TZ).date(), datetime.min.time(), TZ)
    while night < now:
        tick = night + timedelta(hours=4)
        if start < tick < now:
            events.append((tick, len(events), "tick", -1, None))
        night += timedelta(days=1)
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def _aftermath(
    rng: random.Random,
    spec: ProgramSpec,
    pi: int,
    data: dict[str, Any],
    occurred: datetime,
    reported: datetime,
    now: datetime,
    events: list[Event],
) -> None:
    """Schedule a refund (full, partial or in two steps) or a rejection for some orders."""
    update = {k: data[k] for k in ("event", "order_id", "amount", "currency")}
    if data["event"] == "sale" and rng.random() < 0.085:
        at = occurred + timedelta(hours=rng.uniform(6, 24 * 14))
        if at >= now:
            at = reported + (now - reported) * rng.uniform(0.2, 0.95)
        if at <= reported:
            return
        refund = update | {"status": "refunded"}
        amount = Decimal(data["amount"])
        if rng.random() < 0.6:
            if rng.random() < 0.5:
                refund["refund_amount"] = data["amount"]
            events.append((at, len(events), "refund", pi, refund))
            return
        part = (amount * rng.randrange(20, 70) / 100).quantize(CENT)
        events.append((at, len(events), "refund", pi, refund | {"refund_amount": str(part)}))
        if rng.random() < 0.25:
            # refund_amount is cumulative: the second call carries the total so far.
            more = (amount * rng.randrange(70, 101) / 100).quantize(CENT)
            later = at + (now - at) * rng.uniform(0.3, 0.9)
            events.append(
                (later, len(events), "refund2", pi, refund | {"refund_amount": str(more)})
            )
        return
    rate = 0.08 if data["event"] == "lead" else spec.reject_rate
    if spec.lock_days and rng.random() < rate:
        # Rejected while still pending, i.e. inside the lock period.
        at = occurred + timedelta(days=spec.lock_days) * rng.uniform(0.1, 0.9)
        if reported < at < now:
            events.append((at, len(events), "reject", pi, update | {"status": "rejected"}))


def _finish(
    db: Database, world: _World
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, str], ...]]:
    """Ban the click spammers, then create API keys and portal logins."""
    keys: list[tuple[str, str]] = []
    logins: list[tuple[str, str, str]] = []
    with db.write() as conn:
        for membership in world.to_ban:
            catalog.decide_membership(conn, membership, status="banned")
        keys.append(("operator", create_key(conn, role="operator", owner_id=None, name="demo")))
        for merchant_id, name, _ in world.merchants:
            raw = create_key(conn, role="merchant", owner_id=merchant_id, name=f"demo {name}")
            keys.append((f"merchant {name}", raw))
        for program in world.programs:
            raw = create_key(conn, role="program", owner_id=program.id, name=f"demo {program.name}")
            keys.append((f"program {program.name}", raw))
        for ai in world.top:
            name = world.profiles[ai].name
            raw = create_key(
                conn, role="affiliate", owner_id=world.affiliate_ids[ai], name=f"demo {name}"
            )
            keys.append((f"affiliate {name}", raw))
        people: list[tuple[str, str, int | None, str]] = [
            ("operator", f"operator@{EMAIL_DOMAIN}", None, "Demo operator"),
            *(("merchant", email, mid, name) for mid, name, email in world.merchants),
        ]
        if world.top:
            ai = world.top[0]
            profile = world.profiles[ai]
            people.append(("affiliate", profile.email, world.affiliate_ids[ai], profile.name))
        for role, email, owner, name in people:
            create_user(conn, email=email, password=PASSWORD, role=role, owner_id=owner, name=name)
            logins.append((role, email, PASSWORD))
    return tuple(keys), tuple(logins)
