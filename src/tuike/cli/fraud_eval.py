"""`tuike fraud eval`: labelled traffic through the real tracker and conversion API.

A scratch database (a temporary SQLite file unless ``--database``) is migrated and given
a small world: one merchant, a shop (sales) and an app (installs) program with target
countries, organic and fraudulent affiliates with channels, links and coupons, and a
portal login. The application runs in this process, behind the same proxy-header
middleware as `tuike serve` (``X-Forwarded-For`` from 127.0.0.1 is believed, as from a
proxy on the host) with ``TUIKE_COUNTRY_HEADER`` set, and answers every request of the
plan (``services.fraud_traffic``) in time order, the clock replaying the plan's times:
two weeks in about a minute, the rules seeing the traffic's own times. Then the quality
job runs at the end of the replay, and what tuike made of each labelled request is read
back and counted (``services.fraud_evaluation``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from tuike.config import Settings
from tuike.domain.fraud import FraudConfig
from tuike.services import catalog as svc
from tuike.services import clock
from tuike.services.fraud_evaluation import (
    ORGANIC,
    ClickOutcome,
    ConversionOutcome,
    Report,
    evaluate,
)
from tuike.services.fraud_traffic import (
    Click,
    Conversion,
    Login,
    Plan,
    Refund,
    Visitor,
    plan,
)
from tuike.services.keys import create_key
from tuike.services.quality import run_quality
from tuike.services.users import create_user
from tuike.storage import tables as t
from tuike.storage.catalog import has_merchants
from tuike.storage.db import Database
from tuike.storage.migrate import upgrade

PASSWORD = "eval-password-1"  # noqa: S105 - a scratch world's login
COUNTRY_HEADER = "CF-IPCountry"
PROGRAMS: dict[str, dict[str, Any]] = {
    "shop": {
        "name": "Eval Shop",
        "landing_url": "https://shop.example.com/",
        "cookie_days": 30,
        "lock_days": 15,
        "commission_plan": {"cps_percent": "10"},
        "fraud": {"target_countries": ["CN", "HK", "TW", "SG"]},
    },
    "app": {
        "name": "Eval App",
        "landing_url": "https://app.example.com/download",
        "cookie_days": 7,
        "lock_days": 7,
        "commission_plan": {"fixed": {"install": "2.50"}},
        "fraud": {"target_countries": ["CN"]},
    },
}
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


class EvalError(Exception):
    """The evaluation cannot run (e.g. the database given is not empty)."""


@dataclass
class World:
    """The ids and secrets of the scratch world."""

    programs: dict[str, int]
    program_keys: dict[str, str]
    affiliates: dict[str, int]
    labels: dict[str, str]
    codes: dict[tuple[str, str], str]


@dataclass
class Sent:
    """What the replay sent and what came back."""

    click_ids: dict[str, str] = field(default_factory=dict)  # plan ref -> click id
    click_labels: dict[str, str] = field(default_factory=dict)  # click id -> label
    conversion_labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    visitor_cookies: dict[str, str] = field(default_factory=dict)
    refused: int = 0
    requests: int = 0
    buyer_fields: bool = True


@dataclass(frozen=True, slots=True)
class Outcome:
    """The evaluation's report, and how it ran."""

    report: Report
    requests: int
    refused: int
    buyer_fields: bool
    seconds: float
    flagged: dict[str, list[str]]  # affiliate key -> quality rule codes


@contextlib.contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """Yield a migrated, empty database: a temporary SQLite file unless a URL is given."""
    if url is not None:
        upgrade(url)
        db = Database(url)
        try:
            with db.read() as conn:
                if has_merchants(conn):
                    raise EvalError("the database is not empty; the eval needs an empty one")
        finally:
            db.dispose()
        yield url
        return
    # No disk syncs for a throwaway file where memory-backed /tmp exists (mkdtemp: 0700).
    shm = Path("/dev/shm")  # noqa: S108
    folder = Path(tempfile.mkdtemp(prefix="tuike-eval-", dir=shm if shm.is_dir() else None))
    try:
        scratch = f"sqlite:///{folder}/eval.db"
        upgrade(scratch)
        yield scratch
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build_world(db: Database, the_plan: Plan) -> World:
    """Create the merchant, programs, affiliates, links, coupons, keys and logins."""
    logins = {e.affiliate for e in the_plan.events if isinstance(e, Login)}
    with db.write() as conn:
        merchant = svc.create_merchant(conn, name="Eval Merchant", timezone="Asia/Shanghai")
        programs, keys = {}, {}
        for key, spec in PROGRAMS.items():
            fields = {k: v for k, v in spec.items() if k != "fraud"}
            program = svc.create_program(conn, merchant_id=merchant.id, currency="CNY", **fields)
            conn.execute(
                update(t.programs)
                .where(t.programs.c.id == program.id)
                .values(fraud_config=FraudConfig.parse(spec["fraud"]).as_dict())
            )
            programs[key] = program
            keys[key] = create_key(conn, role="program", owner_id=program.id, name="eval")
        affiliates, labels, codes = {}, {}, {}
        for spec in the_plan.affiliates:
            aff = svc.create_affiliate(
                conn,
                name=spec.key,
                email=f"{spec.key}@eval.example.com",
                timezone="Asia/Shanghai",
                channels=[
                    {
                        "kind": spec.kind,
                        "name": spec.key,
                        "url": spec.referer or f"https://{spec.key}.example.cn/",
                    }
                ],
            )
            affiliates[spec.key], labels[spec.key] = aff.id, spec.label
            if spec.key in logins:  # a password hash costs half a second: only who signs in
                create_user(
                    conn,
                    email=f"{spec.key}@eval.example.com",
                    password=PASSWORD,
                    role="affiliate",
                    owner_id=aff.id,
                    name=spec.key,
                )
            for pkey in spec.programs:
                program = programs[pkey]
                membership = svc.apply_to_program(conn, program=program, affiliate_id=aff.id)
                svc.decide_membership(conn, membership, status="approved")
                link = svc.create_link(conn, program=program, affiliate_id=aff.id)
                codes[(spec.key, pkey)] = link.code
            if spec.coupon:
                svc.create_coupon(
                    conn, program=programs["shop"], affiliate_id=aff.id, code=spec.coupon
                )
    return World(
        programs={k: p.id for k, p in programs.items()},
        program_keys=keys,
        affiliates=affiliates,
        labels=labels,
        codes=codes,
    )


def _headers(visitor: Visitor) -> dict[str, str]:
    headers = {"user-agent": visitor.user_agent, "x-forwarded-for": visitor.ip}
    if visitor.country:
        headers[COUNTRY_HEADER.lower()] = visitor.country
    if visitor.referer:
        headers["referer"] = visitor.referer
    return headers


async def _click(client: Any, world: World, sent: Sent, e: Click) -> None:
    headers = _headers(e.visitor)
    cookie = sent.visitor_cookies.get(e.person) if e.person and e.visitor.cookie else None
    if cookie:
        headers["cookie"] = f"tk_v={cookie}"
    r = await client.get(f"/c/{world.codes[(e.affiliate, e.program)]}", headers=headers)
    client.cookies.clear()
    if r.status_code != 302:
        sent.refused += 1
        return
    click_id = parse_qs(urlsplit(r.headers["location"]).query)["tk_click"][0]
    sent.click_ids[e.ref] = click_id
    sent.click_labels[click_id] = e.label
    if e.person and e.visitor.cookie and not cookie:
        for value in r.headers.get_list("set-cookie"):
            if value.startswith("tk_v="):
                sent.visitor_cookies[e.person] = value[5:].split(";", 1)[0]


async def _convert(client: Any, world: World, sent: Sent, e: Conversion) -> None:
    body: dict[str, Any] = {
        "event": e.event,
        "order_id": e.order_id,
        "currency": "CNY",
        "customer_id": e.customer_id,
        "occurred_at": e.at.isoformat(),
    }
    if e.event == "sale":
        body["amount"] = e.amount
    if e.click_ref and e.click_ref in sent.click_ids:
        body["click_id"] = sent.click_ids[e.click_ref]
    if e.coupon:
        body["coupon"] = e.coupon
    headers = {"authorization": f"Bearer {world.program_keys[e.program]}"}
    if sent.buyer_fields:
        r = await client.post(
            "/api/v1/conversions",
            json=body | {"ip": e.buyer.ip, "user_agent": e.buyer.user_agent},
            headers=headers,
        )
        field_ = r.json().get("error", {}).get("field") if r.status_code == 400 else None
        if field_ not in ("ip", "user_agent"):
            _record(sent, e, r.status_code)
            return
        # This build's API refuses the buyer's address and device: send without them.
        sent.buyer_fields = False
    r = await client.post("/api/v1/conversions", json=body, headers=headers)
    _record(sent, e, r.status_code)


def _record(sent: Sent, e: Conversion, status: int) -> None:
    if status in (200, 201):
        sent.conversion_labels[e.order_id] = (e.label, e.program)
    else:
        sent.refused += 1


async def _refund(client: Any, world: World, sent: Sent, e: Refund) -> None:
    if e.order_id not in sent.conversion_labels:
        return
    r = await client.post(
        "/api/v1/conversions",
        json={"event": "sale", "order_id": e.order_id, "status": "refunded"},
        headers={"authorization": f"Bearer {world.program_keys[e.program]}"},
    )
    if r.status_code != 200:
        sent.refused += 1


async def _login(app: Any, e: Login) -> None:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tuike.eval") as browser:
        headers = _headers(e.visitor)
        page = await browser.get("/login", headers=headers)
        token = CSRF.search(page.text)
        await browser.post(
            "/login",
            data={
                "email": f"{e.affiliate}@eval.example.com",
                "password": PASSWORD,
                "csrf": token.group(1) if token else "",
            },
            headers=headers,
        )


async def replay(settings: Settings, db: Database, world: World, the_plan: Plan) -> Sent:
    """Send every request of the plan at its time through the application."""
    import httpx
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from tuike.web.app import create_app

    inner = create_app(settings, db)
    app = ProxyHeadersMiddleware(inner, trusted_hosts=settings.forwarded_allow_ips)
    sent = Sent()
    now = [the_plan.events[0].at]
    transport = httpx.ASGITransport(app=app)  # the peer is 127.0.0.1: a proxy on the host
    with clock.replaying(lambda: now[0]):
        async with (
            inner.router.lifespan_context(inner),
            httpx.AsyncClient(transport=transport, base_url="http://tuike.eval") as client,
        ):
            for e in the_plan.events:
                now[0] = e.at
                sent.requests += 1
                if isinstance(e, Click):
                    await _click(client, world, sent, e)
                elif isinstance(e, Conversion):
                    await _convert(client, world, sent, e)
                elif isinstance(e, Refund):
                    await _refund(client, world, sent, e)
                else:
                    await _login(app, e)
    return sent


def _codes(reasons: Any) -> tuple[str, ...]:
    """Rule codes from a click's comma-separated reasons or a conversion's JSON list."""
    if not reasons:
        return ()
    if isinstance(reasons, str):
        return tuple(c.strip() for c in reasons.split(",") if c.strip())
    return tuple(str(r.get("rule", "")) if isinstance(r, dict) else str(r) for r in reasons)


def read_back(
    db: Database, world: World, sent: Sent, flagged: dict[int, tuple[str, ...]]
) -> Report:
    """Read what tuike recorded for each labelled request, and count."""
    key_of = {v: k for k, v in world.affiliates.items()}
    # The fraud types whose own affiliate (the fraudster) the quality job flagged.
    flagged_labels = {world.labels[key_of[a]] for a in flagged if a in key_of} - {ORGANIC}
    k, c = t.clicks.c, t.conversions.c
    with db.read() as conn:
        clicks = [
            ClickOutcome(
                label=sent.click_labels[row.id],
                filtered=bool(row.invalid or row.is_bot),
                reasons=_codes(row.fraud_reasons),
            )
            for row in conn.execute(select(k.id, k.invalid, k.is_bot, k.fraud_reasons))
            if row.id in sent.click_labels
        ]
        planned = {order: label for order, (label, _program) in sent.conversion_labels.items()}
        conversions = []
        for row in conn.execute(
            select(
                c.order_id,
                c.status,
                c.needs_review,
                c.fraud_reasons,
                c.affiliate_id,
                c.attribution,
            )
        ):
            if row.order_id not in planned:
                continue
            reasons = _codes(row.fraud_reasons)
            if planned[row.order_id] == "coupon_leakage" and row.attribution != "coupon":
                # A click of another affiliate won the order: the leaked code earned its
                # owner nothing, so there is nothing to catch.
                continue
            conversions.append(
                ConversionOutcome(
                    label=planned[row.order_id],
                    held=bool(row.needs_review) or (row.status == "rejected" and bool(reasons)),
                    reasons=reasons,
                    flagged=row.affiliate_id in flagged,
                    planned_affiliate_flagged=planned[row.order_id] in flagged_labels,
                )
            )
    organic = [key for key, label in world.labels.items() if label == ORGANIC]
    return evaluate(
        clicks,
        conversions,
        organic_affiliates=len(organic),
        organic_affiliates_flagged=sum(world.affiliates[key] in flagged for key in organic),
    )


def run_eval(
    base: Settings, *, seed: int, scale: str = "full", database: str | None = None
) -> Outcome:
    """Plan, replay and count: the whole evaluation."""
    started = time.monotonic()
    the_plan = plan(seed, scale)
    with scratch_database(database) as url:
        settings = base.model_copy(
            update={
                "database_url": url,
                "approve_interval_seconds": 0,
                "postback_interval_seconds": 0,
                "fraud_quality_interval_seconds": 0,
                "writer_process": False,  # the writer thread of this process
                "writer_max_delay_ms": 0.0,  # one request at a time: no group to wait for
                "tracker_mode": "durable",
                "country_header": COUNTRY_HEADER,
                "forwarded_allow_ips": "127.0.0.1",
                "public_url": "http://tuike.eval",
            }
        )
        db = Database(url)
        try:
            world = build_world(db, the_plan)
            sent = asyncio.run(replay(settings, db, world, the_plan))
            run = run_quality(
                db,
                settings.quality_settings(),
                window_days=settings.fraud_quality_window_days,
                now=the_plan.end,
            )
            flagged = {
                q.affiliate_id: tuple(s.code for s in q.signals)
                for q in run.qualities.values()
                if q.flagged
            }
            report = read_back(db, world, sent, flagged)
        finally:
            db.dispose()
    key_of = {v: k for k, v in world.affiliates.items()}
    return Outcome(
        report=report,
        requests=sent.requests,
        refused=sent.refused,
        buyer_fields=sent.buyer_fields,
        seconds=time.monotonic() - started,
        flagged={key_of[a]: list(codes) for a, codes in sorted(flagged.items())},
    )
