"""The demo's traffic: visitors, the month's rhythm, and clicks recorded in parallel.

The clicks of the month are split by link into two partitions, each generated from its
own seeded ``random.Random`` and recorded through the click services by its own process
(or one after the other in this process for small volumes), so the world does not
depend on how the work was scheduled.
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import subprocess
import sys
import threading
import traceback
from bisect import bisect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from tuike.domain.tracking import ClickParams, ClickRecord
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click, record_clicks
from tuike.services.demo_sales import Event, SalesPlanner
from tuike.services.demo_world import DAYS, PROGRAMS, TZ
from tuike.storage.db import Database

PARTS = 2
BATCH = 5_000
REPEAT = 0.2  # share of clicks by a browser coming back to a link it clicked recently
NO_SUBS = ("", "", "", "", "")

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


class VisitMaker:
    """Make visits: realistic user agents per channel kind, countries, random IPs."""

    def __init__(self, rng: random.Random) -> None:
        self._random = rng.random
        self._bits = rng.getrandbits
        self._pools: dict[str, tuple[list[str], list[float]]] = {}
        for kind, mix in UA_MIX.items():
            uas: list[str] = []
            weights: list[float] = []
            for group, weight in mix.items():
                uas += UA_GROUPS[group]
                weights += [weight / len(UA_GROUPS[group])] * len(UA_GROUPS[group])
            self._pools[kind] = (uas, list(accumulate(weights)))
        self._countries = [c for c, _ in COUNTRIES]
        self._country_cw = list(accumulate(w for _, w in COUNTRIES))

    def human(self, kind: str, referer: str) -> Visit:
        """Return a person's first visit from a channel of the given kind."""
        uas, cw = self._pools[kind]
        ua = uas[bisect(cw, self._random() * cw[-1])]
        country = self._countries[bisect(self._country_cw, self._random() * self._country_cw[-1])]
        return Visit(self._ip(country), ua, referer, country, None)

    def bot(self) -> Visit:
        """Return a crawler's or script's visit."""
        ua = BOT_UAS[self._bits(16) % len(BOT_UAS)]
        country = ("US", "US", "CN", "SG")[self._bits(2)]
        return Visit(self._ip("bot"), ua, "", country, None)

    def returning(self, visit: Visit, key: str) -> Visit:
        """Return the visit of the same browser coming back, cookie ``tk_v`` set to ``key``."""
        r = self._random()
        if r < 0.3:
            return visit  # cookies cleared or blocked: known again by IP and user agent
        ip = self._ip(visit.country) if r < 0.5 else visit.ip  # a new mobile IP
        return Visit(ip, visit.user_agent, visit.referer, visit.country, key)

    def _ip(self, country: str) -> str:
        bits = self._bits(32)
        prefixes = IP_PREFIXES[country]
        prefix = prefixes[(bits >> 24) % len(prefixes)]
        if prefix.count(".") == 1:
            return f"{prefix}{(bits >> 16) & 255}.{(bits >> 8) & 255}.{(bits & 253) + 1}"
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


@dataclass(frozen=True, slots=True)
class TrafficLink:
    """A link resolved once, with the audience its channel brings."""

    resolved: Resolved
    program: int  # index in PROGRAMS
    kind: str
    referer: str
    bot_rate: float
    weight: float
    deep: ClickParams | None


@dataclass(frozen=True, slots=True)
class ClickJob:
    """One partition of the month's clicks: which of its links is clicked, hour by hour."""

    url: str
    ip_storage: str
    privacy_salt: str
    unique_window_hours: int
    unique_cache_size: int
    seed: int
    part: int
    now: datetime
    links: tuple[TrafficLink, ...]
    slots: tuple[tuple[datetime, float], ...]
    picks: tuple[tuple[int, ...], ...]
    recent: int


# A job's messages: ("flush", (clicks written, requests planned, watermark)) after each
# batch, the watermark being a time before which no further request will come from this
# job (None at its end), then ("done", (clicks, unique clicks, bot clicks)).
Emit = Callable[[str, Any], None]


def plan_jobs(
    rng: random.Random,
    links: Sequence[TrafficLink],
    now: datetime,
    total: int,
    *,
    seed: int,
    url: str,
    settings: tuple[str, str, int, int],
) -> list[ClickJob]:
    """Draw when and on which link each click happens; split the links in two partitions."""
    slots = hour_slots(now)
    per_slot = [0] * len(slots)
    slot_cw = list(accumulate(weight for _, _, weight in slots))
    for i in rng.choices(range(len(slots)), cum_weights=slot_cw, k=total):
        per_slot[i] += 1
    part_of, load = [0] * len(links), [0.0] * PARTS
    for li in sorted(range(len(links)), key=lambda i: -links[i].weight):
        part_of[li] = load.index(min(load))
        load[part_of[li]] += links[li].weight
    link_cw = list(accumulate(link.weight for link in links))
    picks: list[list[tuple[int, ...]]] = [[] for _ in range(PARTS)]
    for n in per_slot:
        drawn = rng.choices(range(len(links)), cum_weights=link_cw, k=n) if n else []
        for part in range(PARTS):
            picks[part].append(tuple(li for li in drawn if part_of[li] == part))
    ip_storage, salt, window, cache = settings
    return [
        ClickJob(
            url=url,
            ip_storage=ip_storage,
            privacy_salt=salt,
            unique_window_hours=window,
            unique_cache_size=cache,
            seed=seed,
            part=part,
            now=now,
            links=tuple(links),
            slots=tuple((begin, seconds) for begin, seconds, _ in slots),
            picks=tuple(picks[part]),
            recent=max(20, total // (100 * PARTS)),  # about the last seven hours
        )
        for part in range(PARTS)
    ]


def run_job(job: ClickJob, emit: Emit, db: Database | None = None) -> None:
    """Generate and record one partition's clicks in time order, and plan their sales."""
    db = db or Database(job.url)
    rng = random.Random(f"{job.seed}:clicks:{job.part}")
    random_ = rng.random
    visits = VisitMaker(rng)
    sales = SalesPlanner(rng, job.part, job.now)
    uniques = UniqueFilter(
        window=timedelta(hours=job.unique_window_hours), max_entries=job.unique_cache_size
    )
    plain = ClickParams(subs=NO_SUBS, deep_link=None, aff_click_id="")
    rates = [list(accumulate(rate for _, rate in spec.primary)) for spec in PROGRAMS]
    events = [[event for event, _ in spec.primary] for spec in PROGRAMS]
    recent: deque[tuple[int, Visit]] = deque(maxlen=job.recent)
    links = job.links
    batch: list[ClickRecord] = []
    planned: list[Event] = []
    unique = bots = 0
    for (begin, seconds), picks in zip(job.slots, job.picks, strict=True):
        offsets = sorted([random_() * seconds for _ in picks])
        for offset, drawn in zip(offsets, picks, strict=True):
            if recent and random_() < REPEAT:
                li, visit = recent[int(random_() * len(recent))]
                first = False
            else:
                li, first = drawn, True
                link = links[li]
                if random_() < link.bot_rate:
                    visit = visits.bot()
                else:
                    visit = visits.human(link.kind, link.referer)
            link = links[li]
            params = plain
            if link.deep is not None and random_() < 0.1:
                params = link.deep
            elif link.kind == "app":
                params = ClickParams(NO_SUBS, None, f"{rng.getrandbits(40):010x}")
            at = begin + timedelta(seconds=offset)
            click = build_click(
                link.resolved,
                params,
                visit,
                at=at,
                ip_storage=job.ip_storage,
                privacy_salt=job.privacy_salt,
                uniques=uniques,
            )
            batch.append(click)
            if click.is_bot:
                bots += 1
                if first:
                    recent.append((li, visit))
            else:
                if first:
                    recent.append((li, visits.returning(visit, click.visitor)))
                unique += click.is_unique
                r, cw = random_(), rates[link.program]
                if r < cw[-1]:
                    event = events[link.program][next(i for i, c in enumerate(cw) if r < c)]
                    planned += sales.after_click(at, link.program, event, click.id)
            if len(batch) >= BATCH:
                _flush(db, batch, planned, at, emit)
    _flush(db, batch, planned, None, emit)
    emit("done", (sum(len(p) for p in job.picks), unique, bots))


def _flush(
    db: Database,
    batch: list[ClickRecord],
    planned: list[Event],
    watermark: datetime | None,
    emit: Emit,
) -> None:
    n = len(batch)
    if n:
        with db.write() as conn:
            record_clicks(conn, batch)
    emit("flush", (n, planned[:], watermark))
    batch.clear()
    planned.clear()


def record_month(
    db: Database,
    jobs: Sequence[ClickJob],
    on_message: Callable[[int, str, Any], None],
    *,
    parallel: bool,
) -> None:
    """Run the click jobs, each in its own process when ``parallel``, passing on messages."""
    if not parallel:
        for job in jobs:
            run_job(job, lambda kind, payload, part=job.part: on_message(part, kind, payload), db)
        return
    # Worker processes are plain interpreters started on this module: no fork (the caller
    # may run threads) and, unlike multiprocessing's spawn, no re-import of __main__.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    inbox: queue.Queue[tuple[int, str, Any]] = queue.Queue()
    workers: list[subprocess.Popen[bytes]] = []
    finished: set[int] = set()
    try:
        for job in jobs:
            worker = subprocess.Popen(
                [sys.executable, "-c", "from tuike.services.demo_traffic import work; work()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            workers.append(worker)
            threading.Thread(target=_listen, args=(worker, job.part, inbox), daemon=True).start()
        for job, worker in zip(jobs, workers, strict=True):  # all start up meanwhile
            assert worker.stdin is not None
            worker.stdin.write(pickle.dumps(job))
            worker.stdin.close()
        while len(finished) < len(jobs):
            part, kind, payload = inbox.get()
            if kind == "done":
                finished.add(part)
            elif kind in ("error", "exit"):
                if kind == "error" or part not in finished:
                    raise RuntimeError(f"demo click worker {part} failed: {payload}")
                continue
            on_message(part, kind, payload)
    finally:
        for worker in workers:
            if worker.poll() is None and len(finished) < len(jobs):
                worker.kill()
            worker.wait()


def _listen(worker: subprocess.Popen[bytes], part: int, inbox: queue.Queue[Any]) -> None:
    """Pass a worker's messages on to the coordinating thread, then its exit."""
    stream = worker.stdout
    assert stream is not None
    while len(head := stream.read(4)) == 4:
        kind, payload = pickle.loads(stream.read(int.from_bytes(head, "big")))  # noqa: S301 - our own child
        inbox.put((part, kind, payload))
    inbox.put((part, "exit", f"exit status {worker.wait()}"))


def work() -> None:
    """Run one click job read from stdin, sending its messages on stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the message stream

    def send(kind: str, payload: Any) -> None:
        data = pickle.dumps((kind, payload))
        out.write(len(data).to_bytes(4, "big") + data)
        out.flush()

    job = pickle.load(sys.stdin.buffer)  # noqa: S301 - sent by our own parent
    try:
        run_job(job, send)
    except BaseException:
        send("error", traceback.format_exc())  # the parent reports it
        raise SystemExit(1) from None
