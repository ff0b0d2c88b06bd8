"""Labelled traffic for `tuike fraud eval`: organic visitors and eight kinds of fraud.

Pure planning from one seeded ``random.Random``: the cast (programs, affiliates, coupons)
and a time-ordered list of requests, each labelled with what it really is. The runner
(``cli/fraud_eval.py``) sends them through the real tracker and conversion API at their
own (replayed) times and reads back what the rules made of them.

Addresses are chosen to look to a real ASN database like what they stand for: organic
visitors come from Chinese, Hong Kong, Taiwanese and Singaporean consumer broadband and
mobile ranges (many mobile users share a few carrier-NAT gateways of China Mobile), data-
center traffic from well-known AWS, Google Cloud, DigitalOcean and Alibaba Cloud ranges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from tuike.services.demo_sales import delay
from tuike.services.demo_traffic import BOT_UAS, HOURLY, UA_GROUPS, UA_MIX

ORGANIC = "organic"
FRAUD_TYPES = (
    "click_flooding",
    "click_injection",
    "cookie_stuffing",
    "bots",
    "datacenter",
    "self_referral",
    "coupon_leakage",
    "device_farm",
)
START = datetime(2026, 10, 1, tzinfo=UTC)  # the replay's first day (any past date works)
DAYS = 14

# Consumer broadband and mobile /16s by country (China Telecom, Unicom and Mobile; PCCW
# and HKBN; HiNet; Singtel and StarHub).
HOME_NETS = {
    "CN": ("123.112", "123.113", "123.118", "61.48", "61.50", "183.14", "183.17", "113.65",
           "113.87", "59.41", "58.247", "112.96", "223.104", "223.105"),
    "HK": ("112.118", "112.119", "218.102"),
    "TW": ("1.160", "1.161", "36.224", "114.32", "118.160"),
    "SG": ("116.86", "42.60", "175.156"),
}  # fmt: skip
COUNTRY_MIX = (("CN", 88.0), ("HK", 5.0), ("TW", 4.0), ("SG", 3.0))
# China Mobile's carrier-NAT gateways: hundreds of phones behind each address.
CARRIER_NAT = ("117.136.12.37", "117.136.38.150", "117.136.79.5", "223.104.3.81")
# Hosting providers' ranges, as /16 prefixes: AWS ap-northeast-1 and -3 (3.112/14,
# 52.192/15, 54.248/15), Google Cloud asia-east1 (34.80/15, 35.194/16), DigitalOcean
# (159.89/16, 128.199/16, 167.99/16), Alibaba Cloud (47.74/15, 47.88/14).
DATACENTER_NETS = (
    ("3.112", "JP"), ("3.113", "JP"), ("52.192", "JP"), ("54.248", "JP"), ("34.80", "TW"),
    ("35.194", "TW"), ("159.89", "US"), ("128.199", "SG"), ("167.99", "US"), ("47.74", "SG"),
    ("47.88", "US"),
)  # fmt: skip
# Where crawlers come from: Googlebot, Bingbot, Baiduspider, Bytespider, Sogou.
BOT_NETS = (
    ("66.249.66", "US"),
    ("66.249.79", "US"),
    ("40.77.167", "US"),
    ("220.181.108", "CN"),
    ("110.249.201", "CN"),
    ("123.126.113", "CN"),
)
# The device farm: one /24 of a consumer range, a rack of the same three phone models.
FARM_NET = "113.88.123"
FARM_UAS = tuple(
    f"Mozilla/5.0 (Linux; Android 10; {model} Build/QKQ1.191014.001; wv) AppleWebKit/537.36 "
    f"(KHTML, like Gecko) Version/4.0 Chrome/83.0.4103.106 Mobile Safari/537.36"
    for model in ("Redmi Note 8", "Redmi Note 8 Pro", "MI 8 Lite")
)


@dataclass(frozen=True, slots=True)
class Scale:
    """How much traffic one run makes (all counts over the replayed days)."""

    organic_people: int
    organic_clicks: int
    organic_affiliates: int
    bot_clicks: int
    datacenter_clicks: int
    farm_clicks: int
    flood_clicks: int
    stuffed_visitors: int
    injections: int
    self_orders: int
    leaked_orders: int


SCALES = {
    "small": Scale(900, 2600, 8, 160, 200, 300, 1200, 500, 20, 6, 20),
    "full": Scale(5000, 11000, 16, 700, 900, 1000, 4000, 2000, 60, 12, 60),
}


@dataclass(frozen=True, slots=True)
class AffiliateSpec:
    """An affiliate of the eval world; ``label`` is what its own traffic is."""

    key: str
    kind: str  # channel kind
    programs: tuple[str, ...]
    label: str = ORGANIC
    coupon: str | None = None  # a coupon in the shop program
    referer: str = ""  # where its visitors come from


@dataclass(frozen=True, slots=True)
class Visitor:
    """A browser: its address, user agent, country and the page it comes from."""

    ip: str
    user_agent: str
    country: str
    referer: str = ""
    cookie: bool = True  # keeps the tracker's visitor cookie between clicks


@dataclass(frozen=True, slots=True)
class Click:
    """GET /c/{code} of an affiliate's link in a program, by a visitor, at a time."""

    at: datetime
    label: str
    ref: str  # names the click for the conversions that follow it
    affiliate: str
    program: str
    visitor: Visitor
    person: str = ""  # the same person's browser across clicks (for the tk_v cookie)


@dataclass(frozen=True, slots=True)
class Conversion:
    """POST /api/v1/conversions: a sale or an install, possibly refunded later."""

    at: datetime
    label: str
    program: str
    order_id: str
    event: str
    amount: str
    click_ref: str | None
    coupon: str | None
    buyer: Visitor
    customer_id: str


@dataclass(frozen=True, slots=True)
class Refund:
    """The shop reporting a sale refunded in full."""

    at: datetime
    program: str
    order_id: str


@dataclass(frozen=True, slots=True)
class Login:
    """An affiliate signing in to the portal from its own address and browser."""

    at: datetime
    affiliate: str
    visitor: Visitor


Event = Click | Conversion | Login | Refund


@dataclass
class Plan:
    """The cast and the labelled requests, in time order."""

    affiliates: list[AffiliateSpec]
    events: list[Event] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        """When the replay ends (after the last event)."""
        return START + timedelta(days=DAYS)


class _Maker:
    def __init__(self, rng: random.Random, scale: Scale) -> None:
        self.rng = rng
        self.scale = scale
        self.n = 0
        self.hour_cw = list(accumulate(HOURLY))
        self.country_cw = list(accumulate(w for _, w in COUNTRY_MIX))

    def ref(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def moment(self, start: datetime = START, days: float = DAYS) -> datetime:
        """A time in the window, following the day's rhythm (Asia/Shanghai is UTC+8)."""
        day = self.rng.randrange(max(1, int(days)))
        r = self.rng.random() * self.hour_cw[-1]
        hour = next(i for i, c in enumerate(self.hour_cw) if r < c)
        utc_hour = (hour - 8) % 24
        return start + timedelta(days=day, hours=utc_hour, seconds=self.rng.random() * 3600)

    def country(self) -> str:
        r = self.rng.random() * self.country_cw[-1]
        return COUNTRY_MIX[next(i for i, c in enumerate(self.country_cw) if r < c)][0]

    def home_ip(self, country: str) -> str:
        net = self.rng.choice(HOME_NETS[country])
        return f"{net}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"

    def ua(self, kind: str) -> str:
        mix = UA_MIX[kind]
        group = self.rng.choices(list(mix), weights=list(mix.values()))[0]
        return self.rng.choice(UA_GROUPS[group])

    def person(self, kind: str = "website") -> Visitor:
        country = self.country()
        ua = self.ua(kind)
        mobile = "Mobile" in ua or "iPhone" in ua
        if mobile and country == "CN" and self.rng.random() < 0.35:
            ip = self.rng.choice(CARRIER_NAT)
        else:
            ip = self.home_ip(country)
        return Visitor(ip, ua, country)


def _cast(scale: Scale) -> list[AffiliateSpec]:
    kinds = ("website", "blog", "im", "sns", "forum", "app")
    out = []
    for i in range(scale.organic_affiliates):
        kind = kinds[i % len(kinds)]
        programs = ("shop", "app") if i % 3 != 2 else ("shop",)
        coupon = f"FAN{i:02d}" if i % 4 == 1 else None
        out.append(
            AffiliateSpec(
                f"org{i:02d}",
                kind,
                programs,
                ORGANIC,
                coupon,
                f"https://{kind}{i}.example.cn/post/{i}",
            )
        )
    out += [
        AffiliateSpec("flooder", "app", ("app", "shop"), "click_flooding"),
        AffiliateSpec("injector", "app", ("app",), "click_injection"),
        AffiliateSpec("stuffer", "website", ("shop",), "cookie_stuffing"),
        AffiliateSpec(
            "trafficbuyer",
            "website",
            ("shop", "app"),
            "datacenter",
            referer="https://deals.example.net/",
        ),
        AffiliateSpec(
            "selfbuyer", "sns", ("shop",), "self_referral", referer="https://weibo.example.cn/u/77"
        ),
        AffiliateSpec(
            "leaker",
            "blog",
            ("shop",),
            "coupon_leakage",
            "LEAKY8",
            "https://blog.example.cn/leaker",
        ),
        AffiliateSpec("farm", "app", ("app",), "device_farm"),
    ]
    return out


def _amount(rng: random.Random) -> str:
    cents = int(3000 * (50 ** rng.random())) + rng.randrange(100)
    return f"{cents // 100}.{cents % 100:02d}"


def plan(seed: int, scale_name: str = "full") -> Plan:
    """Plan the world and its labelled traffic for a seed (the same seed, the same plan)."""
    scale = SCALES[scale_name]
    rng = random.Random(f"tuike-fraud-eval:{seed}")
    m = _Maker(rng, scale)
    cast = _cast(scale)
    result = Plan(affiliates=cast)
    ev = result.events
    end = result.end
    organic = [a for a in cast if a.label == ORGANIC] + [
        a
        for a in cast
        if a.key in ("selfbuyer", "leaker")  # real audiences too
    ]
    people = [m.person() for _ in range(scale.organic_people)]
    orders = 0

    def sale(
        at: datetime,
        label: str,
        program: str,
        click_ref: str | None,
        buyer: Visitor,
        coupon: str | None = None,
        customer: str = "",
    ) -> None:
        nonlocal orders
        if at >= end:
            return
        orders += 1
        event = "sale" if program == "shop" else "install"
        amount = _amount(rng) if event == "sale" else "0.00"
        order_id = f"{program[:1].upper()}-{orders:06d}"
        ev.append(
            Conversion(
                at,
                label,
                program,
                order_id,
                event,
                amount,
                click_ref,
                coupon,
                buyer,
                customer or f"c{rng.randrange(10**6):06d}",
            )
        )
        refund = at + timedelta(hours=rng.uniform(6, 96))
        if event == "sale" and rng.random() < 0.08 and refund < end:
            ev.append(Refund(refund, program, order_id))

    # Organic clicks: people following affiliates' posts; some buy, some come back.
    weights = [rng.uniform(0.5, 2.0) for _ in organic]
    for _ in range(scale.organic_clicks):
        aff = rng.choices(organic, weights=weights)[0]
        program = rng.choice(aff.programs)
        pi = rng.randrange(len(people))
        person = people[pi]
        visitor = Visitor(
            person.ip,
            m.ua(aff.kind) if rng.random() < 0.02 else person.user_agent,
            person.country,
            aff.referer,
        )
        at = m.moment()
        ref = m.ref("o")
        ev.append(Click(at, ORGANIC, ref, aff.key, program, visitor, person=f"p{pi}"))
        rate = 0.045 if program == "shop" else 0.14
        if rng.random() < rate:
            later = at + delay(rng, "sale" if program == "shop" else "install")
            coupon = aff.coupon if program == "shop" and aff.coupon and rng.random() < 0.5 else None
            sale(later, ORGANIC, program, ref, visitor, coupon)

    # Self-referral: the affiliate signs in, then buys through its own link from there.
    me = Visitor("183.17.64.23", UA_GROUPS["mobile"][1], "CN", "")
    ev.append(Login(START + timedelta(hours=2), "selfbuyer", me))
    for i in range(scale.self_orders):
        at = START + timedelta(days=1 + i * (DAYS - 2) / scale.self_orders, hours=rng.uniform(0, 8))
        if i % 4 == 0:
            ev.append(Login(at - timedelta(minutes=20), "selfbuyer", me))
        ref = m.ref("s")
        ev.append(Click(at, "self_referral", ref, "selfbuyer", "shop", me, person="self"))
        sale(
            at + timedelta(minutes=rng.uniform(3, 40)),
            "self_referral",
            "shop",
            ref,
            me,
            customer="self-buyer",
        )

    # Coupon leakage: the leaker's code on a coupon site, used with no click of theirs.
    for _ in range(scale.leaked_orders):
        sale(m.moment(), "coupon_leakage", "shop", None, m.person(), "LEAKY8")

    # Bots and crawlers on every link they find.
    linked = [(a.key, p) for a in cast if a.label == ORGANIC for p in a.programs]
    for _ in range(scale.bot_clicks):
        net, country = rng.choice(BOT_NETS)
        key, program = rng.choice(linked)
        visitor = Visitor(f"{net}.{rng.randrange(1, 255)}", rng.choice(BOT_UAS), country, "", False)
        ev.append(Click(m.moment(), "bots", m.ref("b"), key, program, visitor))

    # Data-center traffic: bought clicks, scripted browsers on cloud machines.
    for i in range(scale.datacenter_clicks):
        net, country = rng.choice(DATACENTER_NETS)
        ip = f"{net}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        visitor = Visitor(
            ip,
            rng.choice(UA_GROUPS["desktop"] + UA_GROUPS["mobile"]),
            country,
            "https://deals.example.net/",
            rng.random() < 0.5,
        )
        key, program = (
            ("trafficbuyer", rng.choice(("shop", "app"))) if i % 5 else rng.choice(linked)
        )
        ev.append(Click(m.moment(), "datacenter", m.ref("d"), key, program, visitor))

    # The device farm: bursts of clicks and installs from one /24, three phone models.
    made = 0
    while made < scale.farm_clicks:
        at = m.moment()
        for _ in range(min(rng.randrange(20, 60), scale.farm_clicks - made)):
            at += timedelta(seconds=rng.uniform(2, 25))
            visitor = Visitor(
                f"{FARM_NET}.{rng.randrange(2, 250)}", rng.choice(FARM_UAS), "CN", "", False
            )
            ref = m.ref("f")
            ev.append(Click(at, "device_farm", ref, "farm", "app", visitor))
            if rng.random() < 0.4:
                sale(
                    at + timedelta(seconds=rng.uniform(30, 150)), "device_farm", "app", ref, visitor
                )
            made += 1

    # Click flooding: an SDK fires clicks for every phone it runs on; a few of those people
    # install or buy on their own later, any time in the cookie window.
    for _ in range(scale.flood_clicks):
        person = m.person("app")
        program = "app" if rng.random() < 0.7 else "shop"
        at = m.moment(days=DAYS - 1)
        ref = m.ref("F")
        ev.append(
            Click(
                at,
                "click_flooding",
                ref,
                "flooder",
                program,
                Visitor(person.ip, person.user_agent, person.country, "", False),
            )
        )
        if rng.random() < (0.012 if program == "app" else 0.008):
            window = 7 if program == "app" else 14
            sale(
                at + timedelta(hours=rng.uniform(1, 24 * window)),
                "click_flooding",
                program,
                ref,
                person,
            )

    # Cookie stuffing: a hidden frame on a busy page clicks the stuffer's link for every
    # visitor, with no referer; some of them buy in the shop on their own days later.
    for _ in range(scale.stuffed_visitors):
        pi = rng.randrange(len(people))
        person = people[pi]
        at = m.moment(days=DAYS - 1)
        ref = m.ref("S")
        visitor = Visitor(person.ip, person.user_agent, person.country, "")
        ev.append(Click(at, "cookie_stuffing", ref, "stuffer", "shop", visitor, person=f"p{pi}"))
        if rng.random() < 0.025:
            sale(
                at + timedelta(hours=rng.uniform(2, 24 * 10)),
                "cookie_stuffing",
                "shop",
                ref,
                visitor,
            )

    # Click injection: an app on the phone sees an install starting and clicks just before
    # it completes; the install was going to happen anyway.
    for _ in range(scale.injections):
        person = m.person("app")
        at = m.moment()
        ref = m.ref("I")
        visitor = Visitor(person.ip, person.user_agent, person.country, "", False)
        ev.append(Click(at, "click_injection", ref, "injector", "app", visitor))
        sale(at + timedelta(seconds=rng.uniform(3, 25)), "click_injection", "app", ref, visitor)

    order = {Login: 0, Click: 1, Conversion: 2, Refund: 3}
    ev.sort(key=lambda e: (e.at, order[type(e)]))
    return result
