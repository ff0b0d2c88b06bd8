"""The demo world: merchants, programs, affiliates, a month of traffic and its sales.

Everything goes through the service functions, exactly as the API and the tracker use
them, so the demo also shows that the rules hold at scale. Random choices come from
``random.Random(seed)`` (the click partitions from seeds derived from it): the same seed
and ``now`` give the same world, except for ids, codes and keys.
"""

from __future__ import annotations

import heapq
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from tuike.config import Settings
from tuike.domain.catalog import Membership, Program
from tuike.domain.tracking import ClickParams
from tuike.services import catalog
from tuike.services.clicks import Resolved
from tuike.services.clock import utcnow
from tuike.services.conversion_requests import parse_request
from tuike.services.conversions import approve_due_conversions, record_conversion
from tuike.services.demo_sales import Event, SalesPlanner, approval_runs, coupon_orders
from tuike.services.demo_traffic import (
    NO_SUBS,
    TrafficLink,
    plan_jobs,
    record_month,
)
from tuike.services.demo_world import (
    CAMPAIGNS,
    EMAIL_DOMAIN,
    MERCHANTS,
    PASSWORD,
    PROGRAMS,
    TZ_NAME,
    AffiliateProfile,
    ProgramSpec,
    Standing,
    affiliate_profiles,
    plan_memberships,
    referer_for,
)
from tuike.services.keys import create_key
from tuike.services.screening import ScreenSettings
from tuike.services.users import create_user
from tuike.storage.catalog import has_merchants
from tuike.storage.db import Database

Progress = Callable[[str, int, int], None]
CLICKS, AFFILIATES = 300_000, 200
CONVERSION_BATCH = 100  # conversion requests per transaction
PARALLEL_FROM = 20_000  # clicks; below this one process is quicker than two


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


@dataclass(slots=True)
class _World:
    merchants: list[tuple[int, str, str]]
    programs: list[Program]
    profiles: list[AffiliateProfile]
    affiliate_ids: list[int]
    links: list[TrafficLink]
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
    if scale <= 0:
        raise ValueError("scale must be positive")
    with db.read() as conn:
        if has_merchants(conn):
            raise DemoError("the database already has merchants; the demo needs an empty one")
    report = progress or (lambda stage, done, total: None)
    rng = random.Random(seed)
    world = _build_catalog(db, rng, max(6, round(AFFILIATES * scale)), report)

    total = round(CLICKS * scale)
    jobs = plan_jobs(
        rng,
        world.links,
        now,
        total,
        seed=seed,
        url=db.url,
        settings=(
            settings.ip_storage,
            settings.privacy_salt,
            settings.unique_window_hours,
            settings.unique_cache_size,
        ),
    )
    parallel = total >= PARALLEL_FROM and (os.cpu_count() or 1) > 1 and _on_disk(db)
    sender = _Sender(db, settings, world.programs, report, parallel=parallel)
    extra = SalesPlanner(rng, len(jobs), now)
    sender.add(coupon_orders(extra, rng, world.coupons, max(3, round(40 * scale)), now))
    sender.add(approval_runs(now, len(jobs) + 1))
    counts = [0, 0, 0]
    clicks_done = 0
    report("clicks", 0, total)

    def on_message(part: int, kind: str, payload: Any) -> None:
        nonlocal clicks_done
        if kind == "flush":
            written, planned, watermark = payload
            clicks_done += written
            report("clicks", clicks_done, total)
            sender.add(planned)
            sender.advance(part, watermark)
        elif kind == "done":
            for i, n in enumerate(payload):
                counts[i] += n

    # Clicks are recorded by two jobs; the conversions they lead to are sent from here as
    # soon as every job is past their time, so that both overlap.
    sender.start(len(jobs))
    record_month(db, jobs, on_message, parallel=parallel)
    sender.finish(now)
    keys, logins = _finish(db, world, report)
    return DemoSummary(
        merchants=len(world.merchants),
        programs=len(world.programs),
        affiliates=len(world.affiliate_ids),
        links=len(world.links),
        clicks=counts[0],
        unique_clicks=counts[1],
        bot_clicks=counts[2],
        conversions=sender.created,
        attributed=sender.attributed,
        refunded=sender.refunded,
        keys=keys,
        logins=logins,
    )


def _on_disk(db: Database) -> bool:
    """Tell whether other processes can open the same database."""
    return not db.is_sqlite or db.url.split("///", 1)[-1] not in ("", ":memory:")


def _build_catalog(db: Database, rng: random.Random, n_affiliates: int, report: Progress) -> _World:
    """Create merchants, programs, creatives, affiliates, memberships, links and coupons."""
    profiles = affiliate_profiles(rng, n_affiliates)
    rank = sorted(range(n_affiliates), key=lambda i: -profiles[i].weight)
    plan = plan_memberships(rng, profiles, rank)
    approved_popularity = [0.0] * n_affiliates
    for (ai, pi), standing in plan.items():
        if standing.status == "approved":
            approved_popularity[ai] += PROGRAMS[pi].popularity
    report("catalog", 0, n_affiliates)
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
                # The platform's 10 % service fee (as Alimama charges), both ways shown.
                fee_rate="0.10",
                fee_mode="on_top" if i % 2 == 0 else "deducted",
            )
            for i, s in enumerate(PROGRAMS)
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
            if i % 25 == 24:
                report("catalog", i + 1, n_affiliates)
        links: list[TrafficLink] = []
        to_ban: list[Membership] = []
        for (ai, pi), standing in plan.items():
            membership = catalog.apply_to_program(
                conn, program=programs[pi], affiliate_id=affiliate_ids[ai]
            )
            if standing.status == "applied":
                continue  # still waiting for the merchant's answer
            membership = catalog.decide_membership(
                conn, membership, status=standing.status, group=standing.group
            )
            if standing.status != "approved":
                continue
            if standing.banned_later:
                to_ban.append(membership)
            # The affiliate's traffic, shared among their programs and links.
            n_links = rng.choice((1, 1, 2, 2, 3))
            share = profiles[ai].weight * PROGRAMS[pi].popularity / approved_popularity[ai]
            for _ in range(n_links):
                weight = share / n_links * rng.uniform(0.5, 1.5)
                link = _link(
                    conn, rng, programs[pi], pi, profiles[ai], affiliate_ids[ai], creatives[pi]
                )
                link = replace(link, weight=weight)
                links.append(replace(link, bot_rate=0.35) if standing.banned_later else link)
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
    creatives: list[int],
) -> TrafficLink:
    """Create a tracking link on one of the affiliate's channels, with placement sub ids."""
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
        creative_id=rng.choice(creatives) if 0.25 <= r < 0.55 else None,
        subs=(placement, rng.choice(CAMPAIGNS)),
    )
    kind = channel["kind"]
    open_page = kind in ("website", "blog", "forum")
    return TrafficLink(
        resolved=Resolved(link=link, program=program, membership_ok=True),
        program=pi,
        kind=kind,
        referer=referer_for(channel, placement),
        bot_rate=0.025 if open_page else 0.008,  # crawlers find open pages, not chats
        weight=1.0,
        deep=ClickParams(subs=NO_SUBS, deep_link=product, aff_click_id="") if open_page else None,
    )


def _coupons(
    conn: Connection,
    rng: random.Random,
    programs: list[Program],
    profiles: list[AffiliateProfile],
    affiliate_ids: list[int],
    rank: list[int],
    plan: dict[tuple[int, int], Standing],
) -> list[tuple[int, str, float]]:
    """Give up to five leading affiliates their own coupon code in a shop (e.g. ANNA10)."""
    made: list[tuple[int, str, float]] = []
    shops = [pi for pi, spec in enumerate(PROGRAMS) if spec.goods and spec.lock_days < 30]
    taken: set[str] = set()
    for ai in rank[:12]:
        for pi in shops:
            standing = plan.get((ai, pi))
            if standing is None or standing.status != "approved" or standing.banned_later:
                continue
            code = f"{profiles[ai].stem}{rng.choice((8, 10, 15, 20, 88))}"
            if code not in taken:
                catalog.create_coupon(
                    conn, program=programs[pi], affiliate_id=affiliate_ids[ai], code=code
                )
                taken.add(code)
                made.append((pi, code, profiles[ai].weight))
            break  # one code per affiliate
        if len(made) == 5:
            break
    return made


class _Sender:
    """Send planned conversion requests in time order once their clicks are recorded."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        programs: list[Program],
        report: Progress,
        *,
        parallel: bool,
    ) -> None:
        self._db = db
        self._programs = programs
        self._salt = settings.privacy_salt
        self._checks = ScreenSettings.of(settings)
        self._max_future = timedelta(seconds=settings.max_future_seconds)
        self._report = report
        # SQLite has one writer and no fair queue: leave the click jobs a gap to commit.
        self._pause = 0.04 if parallel and db.is_sqlite else 0.0
        self._heap: list[Event] = []
        self._marks: list[datetime | None] = []
        self._sent = 0
        self.created = self.attributed = self.refunded = 0

    def add(self, events: list[Event]) -> None:
        """Queue planned requests."""
        for event in events:
            heapq.heappush(self._heap, event)

    def start(self, jobs: int) -> None:
        """Hold every request until each of ``jobs`` has reported a watermark."""
        self._marks = [datetime.min.replace(tzinfo=UTC)] * jobs

    def advance(self, job: int, watermark: datetime | None) -> None:
        """Note that a job sends nothing more before ``watermark``; send what is due."""
        self._marks[job] = watermark
        marks = [m for m in self._marks if m is not None]
        self._send(min(marks) if marks else None)

    def finish(self, now: datetime) -> None:
        """Send everything left, then approve whatever has passed its lock period."""
        self._pause = 0.0
        self._send(None)
        with self._db.write() as conn:
            while approve_due_conversions(conn, now=now):
                pass

    def _send(self, before: datetime | None) -> None:
        heap = self._heap
        while heap and (before is None or heap[0][0] < before):
            with self._db.write() as conn:
                for _ in range(CONVERSION_BATCH):
                    if not heap or (before is not None and heap[0][0] >= before):
                        break
                    self._one(conn, heapq.heappop(heap))
                    self._sent += 1
            self._report("conversions", self._sent, self._sent + len(heap))
            if self._pause:
                time.sleep(self._pause)

    def _one(self, conn: Connection, event: Event) -> None:
        at, _, _, kind, pi, data = event
        if data is None:
            # The nightly job: approve what has passed its lock period.
            while approve_due_conversions(conn, now=at):
                pass
            return
        program = self._programs[pi]
        req = parse_request(data, program, now=at, max_future=self._max_future)
        result = record_conversion(
            conn,
            program,
            req,
            source="api",
            privacy_salt=self._salt,
            now=at,
            checks=self._checks,
        )
        if result.http_status == 201:
            self.created += 1
            self.attributed += bool(result.body["attributed"])
        elif kind == "refund" and not result.body.get("duplicate"):
            self.refunded += 1


def _finish(
    db: Database, world: _World, report: Progress
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
            name, affiliate_id = world.profiles[ai].name, world.affiliate_ids[ai]
            raw = create_key(conn, role="affiliate", owner_id=affiliate_id, name=f"demo {name}")
            keys.append((f"affiliate {name}", raw))
        people: list[tuple[str, str, int | None, str]] = [
            ("operator", f"operator@{EMAIL_DOMAIN}", None, "Demo operator"),
            *(("merchant", email, mid, name) for mid, name, email in world.merchants),
        ]
        top = world.top[0]
        people.append(
            (
                "affiliate",
                world.profiles[top].email,
                world.affiliate_ids[top],
                world.profiles[top].name,
            )
        )
        report("logins", 0, len(people))
        for role, email, owner, name in people:
            create_user(
                conn,
                email=email,
                password=PASSWORD,
                role=role,
                owner_id=owner,
                name=name,
                member_role="owner" if role == "merchant" else "",
            )
            logins.append((role, email, PASSWORD))
            report("logins", len(logins), len(people))
    return tuple(keys), tuple(logins)
