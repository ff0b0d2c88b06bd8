"""The demo world's cast and scenery: programs, affiliates, visitors, traffic rhythm.

Pure data and generators driven by one ``random.Random``; ``services.demo`` turns them
into rows through the ordinary service functions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from tuike.services.clicks import Visit

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
        lock_days=15,
        plan={
            "cps_percent": "12",
            "category_percent": {"skincare": "15", "makeup": "10"},
            "groups": {"vip": {"cps_percent": "18", "category_percent": {"skincare": "20"}}},
        },
        category="beauty",
        popularity=0.30,
        primary=(("sale", 0.034),),
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
        primary=(("sale", 0.022),),
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
        lock_days=7,
        plan={
            "cps_percent": "3",
            "category_percent": {"phones": "2", "accessories": "8"},
            "fixed": {"lead": "5.00"},
        },
        category="electronics",
        popularity=0.22,
        primary=(("sale", 0.016), ("lead", 0.011)),
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
        primary=(("sale", 0.03),),
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
        lock_days=3,
        plan={
            "fixed": {"install": "3.00", "register": "8.00"},
            "groups": {"kol": {"fixed": {"install": "4.00"}}},
        },
        category="app",
        popularity=0.16,
        primary=(("install", 0.06),),
        followups=(("install", "register", 0.45),),
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
        lock_days=10,
        plan={"fixed": {"install": "2.50", "purchase": "6.00"}},
        category="game",
        popularity=0.12,
        primary=(("install", 0.05),),
        followups=(("install", "purchase", 0.3),),
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

_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
_AND = "Mozilla/5.0 (Linux; Android {v}; {m} Build/{b}; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{c} Mobile Safari/537.36"  # noqa: E501
UA_GROUPS: dict[str, tuple[str, ...]] = {
    "wechat": (
        _IOS.format(v="18_1")
        + " Mobile/15E148 MicroMessenger/8.0.53(0x18003531) NetType/WIFI Language/zh_CN",
        _IOS.format(v="17_6")
        + " Mobile/15E148 MicroMessenger/8.0.50(0x1800323c) NetType/4G Language/zh_CN",
        _AND.format(v="14", m="23127PN0CC", b="UKQ1.230804.001", c="130.0.6723.103")
        + " XWEB/1300259 MMWEBSDK/20240404 MicroMessenger/8.0.49.2600(0x2800313D) WeChat/arm64 Weixin NetType/5G Language/zh_CN ABI/arm64",  # noqa: E501
        _AND.format(v="13", m="V2309A", b="TP1A.220624.014", c="122.0.6261.120")
        + " XWEB/1220099 MMWEBSDK/20231201 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",  # noqa: E501
    ),
    "inapp": (
        _IOS.format(v="17_5") + " Mobile/15E148 Weibo (iPhone15,2__weibo__14.6.1__iphone__os17.5)",
        _AND.format(v="13", m="V2227A", b="TP1A.220624.014", c="116.0.0.0")
        + " aweme_310100 JsSdk/1.0 NetType/WIFI AppName/aweme app_version/31.1.0 ByteLocale/zh-CN Region/CN",  # noqa: E501
        _IOS.format(v="17_4") + " Mobile/15E148 discover/8.30 XiaoHongShu/8.30.2",
    ),
    "mobile": (
        _IOS.format(v="17_6") + " Version/17.6 Mobile/15E148 Safari/604.1",
        _IOS.format(v="18_1") + " Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 12; NOH-AN00) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.193 Mobile Safari/537.36",  # noqa: E501
        "Mozilla/5.0 (Linux; U; Android 13; zh-cn; 2211133C Build/TKQ1.220905.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.118 Mobile Safari/537.36 XiaoMi/MiuiBrowser/18.1.30527",  # noqa: E501
        "Mozilla/5.0 (Linux; Android 14; PJZ110 Build/UP1A.230620.001) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.179 Mobile Safari/537.36 HeyTapBrowser/40.8.39.1",  # noqa: E501
        "Mozilla/5.0 (Linux; Android 14; SM-S9180) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",  # noqa: E501
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",  # noqa: E501
        "Mozilla/5.0 (Linux; Android 13; MRO-W00) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",  # noqa: E501
    ),
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",  # noqa: E501
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",  # noqa: E501
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",  # noqa: E501
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 QQBrowser/12.8.5728.400",  # noqa: E501
    ),
}
BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",  # noqa: E501
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",  # noqa: E501
)
# How each channel kind's audience browses: weights of the UA groups above.
UA_MIX: dict[str, dict[str, float]] = {
    "im": {"wechat": 80, "mobile": 14, "desktop": 6},
    "sns": {"inapp": 50, "mobile": 32, "wechat": 10, "tablet": 3, "desktop": 5},
    "website": {"mobile": 52, "wechat": 8, "desktop": 32, "tablet": 8},
    "blog": {"mobile": 45, "wechat": 7, "desktop": 40, "tablet": 8},
    "forum": {"mobile": 45, "desktop": 50, "tablet": 5},
    "app": {"mobile": 88, "wechat": 7, "tablet": 5},
}
COUNTRIES = (("CN", 86.0), ("HK", 5.0), ("TW", 3.0), ("SG", 3.0), ("US", 3.0))
IP_PREFIXES: dict[str, tuple[str, ...]] = {
    "CN": ("36.", "39.", "42.", "58.", "60.", "101.", "106.", "110.", "111.", "112.", "113.",
           "114.", "115.", "116.", "117.", "119.", "120.", "121.", "122.", "123.", "124.",
           "125.", "180.", "182.", "183.", "218.", "219.", "220.", "221.", "222.", "223."),
    "HK": ("14.136.", "42.2.", "58.176.", "112.118.", "203.198.", "219.76."),
    "TW": ("1.160.", "36.224.", "61.216.", "114.32.", "118.160."),
    "SG": ("42.60.", "116.86.", "119.56.", "175.156.", "203.116."),
    "US": ("23.94.", "24.5.", "67.160.", "73.12.", "98.207.", "173.48."),
    "bot": ("66.249.", "40.77.", "220.181.", "47.92.", "123.125.", "34.102."),
}  # fmt: skip

# Relative clicks by local hour: quiet nights, a lunch bump, a late-evening peak; and the
# shape of the 11.11 shopping festival, which opens with a midnight rush.
HOURLY = (0.55, 0.35, 0.22, 0.15, 0.12, 0.15, 0.3, 0.6, 0.9, 1.1, 1.2, 1.3,
          1.55, 1.35, 1.2, 1.2, 1.3, 1.4, 1.6, 1.9, 2.3, 2.6, 2.4, 1.3)  # fmt: skip
FESTIVAL = (6.0, 3.0, 1.2, 0.6, 0.3, 0.3, 0.5, 0.9, 1.3, 1.6, 1.8, 1.9,
            2.1, 2.0, 1.8, 1.8, 1.9, 2.0, 2.2, 2.6, 3.2, 3.6, 3.8, 3.0)  # fmt: skip
SPIKE = 8.0


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


class VisitMaker:
    """Make visits: realistic user agents per channel kind, countries, random IPs."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._pools: dict[str, tuple[list[str], list[float]]] = {}
        for kind, mix in UA_MIX.items():
            uas: list[str] = []
            weights: list[float] = []
            for group, weight in mix.items():
                members = UA_GROUPS[group]
                uas += members
                weights += [weight / len(members)] * len(members)
            self._pools[kind] = (uas, list(accumulate(weights)))
        self._countries = [c for c, _ in COUNTRIES]
        self._country_cw = list(accumulate(w for _, w in COUNTRIES))

    def human(self, kind: str, referer: str) -> Visit:
        """Return a person's visit from a channel of the given kind."""
        rng = self._rng
        uas, cw = self._pools[kind]
        country = rng.choices(self._countries, cum_weights=self._country_cw)[0]
        cookie = f"{rng.getrandbits(64):016x}" if rng.random() < 0.6 else None
        return Visit(
            ip=self._ip(country),
            user_agent=rng.choices(uas, cum_weights=cw)[0],
            referer=referer,
            country=country,
            visitor_cookie=cookie,
        )

    def bot(self) -> Visit:
        """Return a crawler's or script's visit."""
        rng = self._rng
        return Visit(
            ip=self._ip("bot"),
            user_agent=rng.choice(BOT_UAS),
            referer="",
            country=rng.choice(("US", "CN", "SG")),
            visitor_cookie=None,
        )

    def _ip(self, country: str) -> str:
        bits = self._rng.getrandbits(24)
        prefix = self._rng.choice(IP_PREFIXES[country])
        if prefix.count(".") == 1:
            return f"{prefix}{bits >> 16}.{(bits >> 8) & 255}.{(bits & 253) + 1}"
        return f"{prefix}{(bits >> 8) & 255}.{(bits & 253) + 1}"


def spike_day(now: datetime) -> datetime:
    """Return local midnight of the festival day: 11 Nov if in the window, else 12 days ago."""
    start = now - timedelta(days=DAYS)
    local_now = now.astimezone(TZ)
    for year in (local_now.year, local_now.year - 1):
        day = datetime(year, 11, 11, tzinfo=TZ)
        if start <= day and day + timedelta(days=1) <= now:
            return day
    ago = (local_now - timedelta(days=12)).date()
    return datetime(ago.year, ago.month, ago.day, tzinfo=TZ)


def hour_slots(now: datetime) -> list[tuple[datetime, float, float]]:
    """Return (start, seconds, weight) for each hour of the last 30 days, in order."""
    start = now - timedelta(days=DAYS)
    festival = spike_day(now).date()
    festival_scale = SPIKE * sum(HOURLY) / sum(FESTIVAL)
    slot = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while slot < now:
        begin, end = max(slot, start), min(slot + timedelta(hours=1), now)
        local = slot.astimezone(TZ)
        if local.date() == festival:
            weight = FESTIVAL[local.hour] * festival_scale
        else:
            weight = HOURLY[local.hour] * (1.1 if local.weekday() >= 5 else 1.0)
        seconds = (end - begin).total_seconds()
        out.append((begin, seconds, weight * seconds / 3600))
        slot += timedelta(hours=1)
    return out


def money(value: float) -> str:
    """Return a price string the way shops write them (199.00, 89.90)."""
    return f"{int(value)}.{(0, 0, 0, 90, 80, 50)[int(value * 7) % 6]:02d}"


def order(rng: random.Random, spec: ProgramSpec) -> tuple[str, list[dict[str, Any]]]:
    """Return an order amount and, for about 40 % of orders, its items with categories."""
    if spec.goods and rng.random() < 0.4:
        items = []
        for n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            category, low, high = rng.choice(spec.goods)
            items.append(
                {
                    "sku": f"{category[:3].upper()}-{rng.randrange(100, 999)}",
                    "category": category,
                    "amount": money(low * (high / low) ** rng.random()),
                    "quantity": 1 if n or rng.random() < 0.8 else 2,
                }
            )
        cents = sum(round(float(i["amount"]) * 100) * i["quantity"] for i in items)
        return f"{cents // 100}.{cents % 100:02d}", items
    low, high = spec.amount_range
    return money(low * (high / low) ** rng.random()), []


def delay(rng: random.Random, event: str) -> timedelta:
    """Return how long after the click (or install) an event happens."""
    r = rng.random()
    if event == "install":
        return timedelta(minutes=1 + 29 * r)
    if event in ("lead", "register"):
        return timedelta(minutes=2 + 118 * r)
    if r < 0.55:
        return timedelta(minutes=2 + 58 * rng.random())
    if r < 0.85:
        return timedelta(hours=1 + 23 * rng.random())
    return timedelta(hours=24 + 24 * rng.random())


def weighted_sample(
    rng: random.Random, items: Sequence[int], weights: Sequence[float], k: int
) -> list[int]:
    """Return ``k`` distinct items drawn with probability proportional to their weights."""
    keyed = sorted(items, key=lambda i: rng.random() ** (1.0 / weights[i]), reverse=True)
    return keyed[:k]
