"""The demo world's cast: merchants, programs, affiliates and who joins which program.

Pure data and generators driven by one ``random.Random``; ``services.demo`` turns them
into rows through the ordinary service functions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
DAYS = 30
PASSWORD = "tuike-demo"  # noqa: S105 - the documented demo password
EMAIL_DOMAIN = "demo.tuike.dev"

# (key, name, portal login)
MERCHANTS: tuple[tuple[str, str, str], ...] = (
    ("beauty", "花颜美妆 Huayan Beauty", f"beauty@{EMAIL_DOMAIN}"),
    ("electronics", "极客数码 GeekMall", f"electronics@{EMAIL_DOMAIN}"),
    ("apps", "乐动互娱 LeDong Apps", f"apps@{EMAIL_DOMAIN}"),
)


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One demo program: its settings, and how its visitors convert."""

    key: str
    merchant: str
    name: str
    landing_url: str
    fallback_url: str
    allowed_domains: tuple[str, ...]
    cookie_days: int
    lock_days: int
    plan: dict[str, Any]
    category: str
    popularity: float
    # (event, probability per human click) for events that follow a click directly
    primary: tuple[tuple[str, float], ...]
    # (event it follows, event, probability)
    followups: tuple[tuple[str, str, float], ...] = ()
    # (category, lowest, highest unit price) of the shop's goods
    goods: tuple[tuple[str, int, int], ...] = ()
    amount_range: tuple[int, int] = (0, 0)
    purchase_amounts: tuple[int, ...] = ()
    deep_paths: tuple[str, ...] = ()
    group: str = ""
    reject_rate: float = 0.01


PROGRAMS: tuple[ProgramSpec, ...] = (
    ProgramSpec(
        key="beauty",
        merchant="beauty",
        name="花颜美妆 · 全站 CPS",
        landing_url="https://beauty.example.com/",
        fallback_url="https://beauty.example.com/sale",
        allowed_domains=("beauty.example.com", "huayan.example.cn"),
        cookie_days=30,
        lock_days=20,
        plan={
            "cps_percent": "12",
            "category_percent": {"skincare": "15", "makeup": "10"},
            "groups": {"vip": {"cps_percent": "18", "category_percent": {"skincare": "20"}}},
        },
        category="beauty",
        popularity=0.30,
        primary=(("sale", 0.017),),
        goods=(("skincare", 89, 399), ("makeup", 59, 269), ("haircare", 39, 159)),
        amount_range=(80, 600),
        deep_paths=("p/serum-30ml", "p/lipstick-matte", "c/skincare", "activity/1111"),
        group="vip",
    ),
    ProgramSpec(
        key="beauty-global",
        merchant="beauty",
        name="花颜美妆 · 海外直邮 Global",
        landing_url="https://global.beauty.example.com/",
        fallback_url="https://beauty.example.com/",
        allowed_domains=("global.beauty.example.com",),
        cookie_days=15,
        lock_days=30,
        plan={"cps_percent": "8", "category_percent": {"fragrance": "6"}},
        category="beauty",
        popularity=0.10,
        primary=(("sale", 0.012),),
        goods=(("fragrance", 299, 899), ("skincare", 159, 699)),
        amount_range=(150, 900),
        deep_paths=("p/eau-de-parfum-50ml", "brand/sk"),
    ),
    ProgramSpec(
        key="electronics",
        merchant="electronics",
        name="极客数码 · 主站",
        landing_url="https://electronics.example.com/",
        fallback_url="https://electronics.example.com/deals",
        allowed_domains=("electronics.example.com", "geekmall.example.cn"),
        cookie_days=7,
        lock_days=14,
        plan={
            "cps_percent": "3",
            "category_percent": {"phones": "2", "accessories": "8"},
            "fixed": {"lead": "5.00"},
        },
        category="electronics",
        popularity=0.22,
        primary=(("sale", 0.009), ("lead", 0.006)),
        goods=(("phones", 1999, 7999), ("laptops", 3999, 7999), ("accessories", 29, 399)),
        amount_range=(300, 8000),
        deep_paths=("p/phone-15-pro", "p/earbuds", "c/laptops", "trade-in"),
        reject_rate=0.03,
    ),
    ProgramSpec(
        key="outlet",
        merchant="electronics",
        name="极客数码 · 奥莱清仓 Outlet",
        landing_url="https://outlet.electronics.example.com/",
        fallback_url="https://electronics.example.com/",
        allowed_domains=("outlet.electronics.example.com",),
        cookie_days=1,
        lock_days=0,
        plan={"cps_percent": "5", "category_percent": {"refurbished": "4"}},
        category="electronics",
        popularity=0.10,
        primary=(("sale", 0.016),),
        goods=(("refurbished", 499, 2999), ("accessories", 19, 199)),
        amount_range=(100, 3000),
        deep_paths=("flash-sale", "c/refurbished"),
    ),
    ProgramSpec(
        key="app",
        merchant="apps",
        name="乐动 App 拉新",
        landing_url="https://app.ledong.example.com/download",
        fallback_url="https://app.ledong.example.com/",
        allowed_domains=("app.ledong.example.com",),
        cookie_days=7,
        lock_days=10,
        plan={
            "fixed": {"install": "3.00", "register": "8.00"},
            "groups": {"kol": {"fixed": {"install": "4.00"}}},
        },
        category="app",
        popularity=0.16,
        primary=(("install", 0.027),),
        followups=(("install", "register", 0.4),),
        deep_paths=("download?ch=ios", "download?ch=android"),
        group="kol",
        reject_rate=0.02,
    ),
    ProgramSpec(
        key="game",
        merchant="apps",
        name="《星海物语》手游推广",
        landing_url="https://starsea.ledong.example.com/",
        fallback_url="https://app.ledong.example.com/",
        allowed_domains=("starsea.ledong.example.com",),
        cookie_days=15,
        lock_days=20,
        plan={"fixed": {"install": "2.50", "purchase": "6.00"}},
        category="game",
        popularity=0.12,
        primary=(("install", 0.024),),
        followups=(("install", "purchase", 0.25),),
        purchase_amounts=(6, 30, 68, 128, 198, 328, 648),
        deep_paths=("gift-pack",),
    ),
)

# Display name and coupon stem of the people behind the affiliate accounts.
PEOPLE_ZH = (
    ("小美", "XIAOMEI"), ("阿花", "AHUA"), ("老王", "LAOWANG"), ("小李", "XIAOLI"),
    ("大鹏", "DAPENG"), ("晓雯", "XIAOWEN"), ("莉莉", "LILI"), ("阿杰", "AJIE"),
    ("小鱼", "XIAOYU"), ("甜甜", "TIANTIAN"), ("豆豆", "DOUDOU"), ("静静", "JINGJING"),
    ("阿凯", "AKAI"), ("萌萌", "MENGMENG"), ("大熊", "DAXIONG"), ("小七", "XIAOQI"),
)  # fmt: skip
PEOPLE_EN = (
    ("Anna", "ANNA"), ("Kevin", "KEVIN"), ("Lily", "LILY"), ("Jason", "JASON"),
    ("Momo", "MOMO"), ("Vivian", "VIVIAN"), ("Eric", "ERIC"), ("Cathy", "CATHY"),
    ("Leo", "LEO"), ("Mia", "MIA"), ("Tony", "TONY"), ("Grace", "GRACE"),
)  # fmt: skip
TOPICS_ZH = (
    "的美妆日记", "的护肤笔记", "省钱攻略", "数码测评", "的好物分享", "福利社",
    "优惠情报站", "的科技生活", "玩机日常", "手游攻略", "的剁手清单", "种草机",
)  # fmt: skip
TOPICS_EN = (
    "'s Beauty Lab", " Deals", " Tech Reviews", "'s Picks", " Gadget Hub",
    " Savings Club", " Game Zone", "'s Lifestyle Blog", " Unboxed",
)  # fmt: skip

SNS = (
    ("微博", "weibo", "https://weibo.com/u/{n}", "https://weibo.com/"),
    ("小红书", "xiaohongshu", "https://www.xiaohongshu.com/user/profile/{h}", "https://www.xiaohongshu.com/"),
    ("抖音", "douyin", "https://www.douyin.com/user/{h}", "https://www.douyin.com/"),
    ("Bilibili", "bilibili", "https://space.bilibili.com/{n}", "https://www.bilibili.com/"),
)  # fmt: skip
IM = (
    ("微信群", "wechat-group", "weixin://group/{h}"),
    ("QQ群", "qq-group", "https://qm.qq.com/q/{h}"),
    ("Telegram", "telegram", "https://t.me/{s}_deals"),
)
FORUMS = (
    ("什么值得买", "https://post.smzdm.example.com/u/{n}"),
    ("Chiphell", "https://www.chiphell.example.com/space-uid-{n}.html"),
    ("HardwareZone", "https://forums.hardwarezone.example.com/members/{s}.{n}/"),
)
PLACEMENTS = {
    "website": ("homepage-banner", "deal-page", "sidebar"),
    "forum": ("forum-post", "forum-signature"),
    "blog": ("blog-sidebar", "blog-review", "blog-post"),
    "app": ("app-feed", "mini-program"),
}
CAMPAIGNS = ("", "", "", "1111", "daily-deal", "new-user")


@dataclass(frozen=True, slots=True)
class AffiliateProfile:
    """An affiliate to create, with their channels and traffic weight."""

    name: str
    email: str
    stem: str
    timezone: str
    channels: tuple[dict[str, str], ...]
    placements: tuple[str, ...]
    weight: float


def affiliate_profiles(rng: random.Random, count: int) -> list[AffiliateProfile]:
    """Draw ``count`` affiliates: unique names, 1-3 channels each, Pareto traffic weights."""
    names = [(p + t, stem) for p, stem in PEOPLE_ZH for t in TOPICS_ZH]
    names += [(p + t, stem) for p, stem in PEOPLE_EN for t in TOPICS_EN]
    rng.shuffle(names)
    while len(names) < count:
        names += [(f"{n} {len(names)}", s) for n, s in names[:count]]
    out = []
    for i in range(count):
        name, stem = names[i]
        slug = f"{stem.lower()}{i + 1}"
        kinds = rng.sample(("website", "sns", "forum", "im", "blog", "app"), rng.randint(1, 3))
        channels, placements = [], []
        for kind in kinds:
            channel, placement = _channel(rng, kind, name, slug)
            channels.append(channel)
            placements.append(placement)
        out.append(
            AffiliateProfile(
                name=name,
                email=f"aff{i + 1:03d}@{EMAIL_DOMAIN}",
                stem=stem,
                timezone=TZ_NAME if i % 5 else rng.choice(("Asia/Hong_Kong", "Asia/Singapore")),
                channels=tuple(channels),
                placements=tuple(placements),
                weight=min(rng.paretovariate(1.16), 80.0),
            )
        )
    return out


def _channel(rng: random.Random, kind: str, name: str, slug: str) -> tuple[dict[str, str], str]:
    n, h = rng.randrange(10**6, 10**10), f"{rng.getrandbits(48):012x}"
    if kind == "sns":
        label, placement, url, _ = rng.choice(SNS)
        return {"kind": kind, "name": f"{label} @{name}", "url": url.format(n=n, h=h)}, placement
    if kind == "im":
        label, placement, url = rng.choice(IM)
        chat = {"name": f"{label}: {name}", "url": url.format(h=h, s=slug)}
        return {"kind": kind, **chat}, placement
    if kind == "forum":
        label, url = rng.choice(FORUMS)
        chat = {"name": f"{label} · {name}", "url": url.format(n=n, s=slug)}
        return {"kind": kind, **chat}, rng.choice(PLACEMENTS[kind])
    url = {
        "website": f"https://{slug}.example.net/",
        "blog": f"https://{slug}.blog.example.org/",
        "app": f"https://mp.example.com/{slug}",
    }[kind]
    label = {"website": "网站", "blog": "Blog", "app": "小程序"}[kind]
    return {"kind": kind, "name": f"{name} {label}", "url": url}, rng.choice(PLACEMENTS[kind])


def referer_for(channel: dict[str, str], placement: str) -> str:
    """Return the Referer a channel's visitors send (chat apps send none)."""
    if channel["kind"] in ("im", "app"):
        return ""
    if channel["kind"] == "sns":
        return next(root for _, p, _, root in SNS if p == placement)
    return channel["url"]


def money(value: float) -> str:
    """Return a price string the way shops write them (199.00, 89.90)."""
    return f"{int(value)}.{(0, 0, 0, 90, 80, 50)[int(value * 7) % 6]:02d}"


def order(rng: random.Random, spec: ProgramSpec) -> tuple[str, list[dict[str, Any]]]:
    """Return an order amount and, for about 40 % of orders, its items with categories."""
    low, high = spec.amount_range
    if spec.goods and rng.random() < 0.4:
        items: list[dict[str, Any]] = []
        cents = 0
        for n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            category, cheapest, dearest = rng.choice(spec.goods)
            amount = money(cheapest * (dearest / cheapest) ** rng.random())
            quantity = 1 if n or rng.random() < 0.8 else 2
            line = round(float(amount) * 100) * quantity
            if items and cents + line > high * 100:
                break  # baskets stay within the shop's usual order sizes
            sku = f"{category[:3].upper()}-{rng.randrange(100, 999)}"
            items.append({"sku": sku, "category": category, "amount": amount, "quantity": quantity})
            cents += line
        return f"{cents // 100}.{cents % 100:02d}", items
    return money(low * (high / low) ** rng.random()), []


def weighted_sample(
    rng: random.Random, items: Sequence[int], weights: Sequence[float], k: int
) -> list[int]:
    """Return ``k`` distinct items drawn with probability proportional to their weights."""
    keyed = sorted(items, key=lambda i: rng.random() ** (1.0 / weights[i]), reverse=True)
    return keyed[:k]


class Standing(NamedTuple):
    """How a planned membership ends up: status, commission group, banned at the end."""

    status: str
    group: str | None
    banned_later: bool


def plan_memberships(
    rng: random.Random, profiles: Sequence[AffiliateProfile], rank: Sequence[int]
) -> dict[tuple[int, int], Standing]:
    """Plan who applies where (by affiliate and program index) and how it ends."""
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
    plan = {key: Standing(s, None, False) for key, s in status.items()}
    for pi, spec in enumerate(PROGRAMS):
        if spec.group:
            members = [a for (a, p), s in status.items() if p == pi and s == "approved"]
            members.sort(key=lambda a: position[a])
            for ai in members[: max(1, len(members) // 12)]:
                plan[(ai, pi)] = Standing("approved", spec.group, False)
    # A couple of mid-table affiliates whose traffic turns out to be click spam.
    suspects = [
        key
        for key, p in plan.items()
        if p.status == "approved" and not p.group and position[key[0]] >= 10
    ]
    for key in rng.sample(suspects, min(2, len(suspects))):
        plan[key] = Standing("approved", None, True)
    return plan
