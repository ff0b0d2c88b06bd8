"""The click-time fraud rules, their windows and the adapters they read (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import combinations

import pytest

from tuike.adapters.networks import hosting_networks
from tuike.adapters.useragent import BotPatterns, UserAgents, device_model, user_agents
from tuike.config import DATACENTER_NETWORKS
from tuike.domain.fraud import FraudConfig, Signal, score
from tuike.domain.fraud import click as rules
from tuike.domain.fraud.click import (
    COOKIELESS_WEIGHT,
    NO_REFERER_WEIGHT,
    RULES,
    WEIGHT,
    ClickThresholds,
    DeclaredChannels,
)
from tuike.services.click_quality import ClickChecks, ClickWindows

T = ClickThresholds()
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
IPHONE_WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/4G Language/zh_CN"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; {model} Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MicroMessenger/8.0.42.2460(0x28002A3B) WeChat/arm64 Weixin NetType/4G Language/zh_CN"
)
AWS_IP = "3.5.140.2"  # AMAZON-02 in the shipped ASN data
CHINA_MOBILE_IP = "223.104.3.1"  # a carrier's address: many people behind it


# --- one rule at a time: fires, does not fire, says why --------------------------------


def test_every_click_rule_has_a_distinct_code_and_a_weight():
    assert len({r.code for r in RULES}) == len(RULES) == 12
    assert all(r.stage == "click" and 0 < r.weight <= 100 for r in RULES)


def test_bot_ua():
    assert rules.bot_ua(None) is None
    s = rules.bot_ua("crawlerdetect: Googlebot")
    assert (s.code, s.weight) == ("bot_ua", 100)
    assert s.evidence == "user agent matches crawlerdetect: Googlebot"


def test_head_or_prefetch():
    assert rules.head_or_prefetch("GET", "") is None
    assert rules.head_or_prefetch("GET", "navigate") is None
    assert rules.head_or_prefetch("HEAD", "").evidence == "HEAD request"
    for purpose in ("prefetch", "prefetch;prerender", "preview", "Prefetch"):
        s = rules.head_or_prefetch("GET", purpose)
        assert s.weight == 100 and purpose in s.evidence


def test_outside_target_country():
    targets = frozenset({"CN", "HK"})
    assert rules.outside_target_country("US", frozenset()) is None  # no targets: anywhere
    assert rules.outside_target_country("", targets) is None  # unknown country
    assert rules.outside_target_country("CN", targets) is None
    s = rules.outside_target_country("US", targets)
    assert s.weight == 30
    assert s.evidence == "country US, the program targets CN, HK"


def test_datacenter_ip():
    assert rules.datacenter_ip(None, "1.2.3.4") is None
    s = rules.datacenter_ip("AMAZON-02", AWS_IP)
    assert (s.weight, s.evidence) == (60, "3.5.140.2 belongs to AMAZON-02")


def test_windowed_rules_fire_at_their_thresholds_and_show_the_counts():
    assert rules.repeat_visitor(2, T, cookie=True) is None
    s = rules.repeat_visitor(3, T, cookie=True)
    assert s.weight == 15 and s.evidence.startswith("visitor (tk_v cookie): 3 clicks")
    s = rules.repeat_visitor(3, T, cookie=False)
    assert s.weight == 5 and "without cookie" in s.evidence

    assert rules.visitor_velocity(9, T, cookie=True) is None
    assert rules.visitor_velocity(10, T, cookie=True).weight == 40
    assert rules.visitor_velocity(10, T, cookie=False).weight == 10

    assert rules.ip_velocity(19, T, "1.2.3.4") is None
    s = rules.ip_velocity(20, T, "1.2.3.4")
    assert s.evidence == "20 clicks from 1.2.3.4 on this link in 60 s (threshold 20)"

    assert rules.affiliate_ip_velocity(59, T, "1.2.3.4") is None
    assert "60 clicks from 1.2.3.4" in rules.affiliate_ip_velocity(60, T, "1.2.3.4").evidence

    ip = rules.ip_number("203.0.113.77")
    assert rules.subnet_burst(99, T, ip) is None
    assert "from 203.0.113.0/24" in rules.subnet_burst(100, T, ip).evidence
    v6 = rules.ip_number("2001:db8:abcd:12::1")
    assert "2001:db8:abcd::/48" in rules.subnet_burst(100, T, v6).evidence


def test_device_model_burst_needs_a_count_and_a_share():
    assert rules.device_model_burst(30, 40, T, "") is None  # no model known
    assert rules.device_model_burst(19, 20, T, "V2134A") is None  # too few
    assert rules.device_model_burst(30, 100, T, "V2134A") is None  # 30 %: a popular phone
    s = rules.device_model_burst(30, 40, T, "V2134A")
    assert s.weight == 20 and "30 of the 40 clicks naming a phone model" in s.evidence
    assert "V2134A" in s.evidence


def test_referer_against_declared_channels():
    web = DeclaredChannels.of([("blog", "https://www.blog.example/x"), ("sns", "weibo.com/u/1")])
    assert web.hosts == {"blog.example", "weibo.com"} and not web.no_referer
    im = DeclaredChannels.of([("im", "WeChat group 7"), ("blog", "https://blog.example")])
    assert im.no_referer

    s = rules.referer_mismatch("", web)
    assert s.weight == NO_REFERER_WEIGHT == 5 and "no referer" in s.evidence
    assert rules.referer_mismatch("", im) is None  # IM groups and apps send none
    assert rules.referer_mismatch("https://blog.example/post/1", web) is None
    assert rules.referer_mismatch("https://m.weibo.com/status/9", web) is None  # subdomain
    s = rules.referer_mismatch("https://spam.example.net/x", web)
    assert s.weight == 25
    assert s.evidence.startswith("referer host spam.example.net is not one of")
    assert rules.referer_mismatch("https://spam.example.net/", DeclaredChannels()) is None


def test_referer_host_reads_urls_without_urllib():
    assert rules.referer_host("https://WWW.Example.com:8443/a?b#c") == "example.com"
    assert rules.referer_host("http://user@host.example/") == "host.example"
    assert rules.referer_host("https://[2001:db8::1]:443/") == "2001:db8::1"
    assert rules.referer_host("android-app://com.tencent.mm/") == "com.tencent.mm"
    assert rules.referer_host("") == ""


def test_ip_numbers_and_subnets():
    assert rules.ip_number(None) is None and rules.ip_number("testclient") is None
    assert rules.ip_number("::ffff:3.5.140.2") == rules.ip_number(AWS_IP)
    a, b = rules.ip_number("198.51.100.7"), rules.ip_number("198.51.100.250")
    assert rules.subnet_of(a) == rules.subnet_of(b) != rules.subnet_of(a + 256)
    assert rules.subnet_text(a) == "198.51.100.0/24"


# --- how the weights add up ------------------------------------------------------------


def test_no_weak_signal_filters_alone_but_strong_ones_do():
    line = FraudConfig().invalid_click_score
    strong = {"bot_ua", "head_or_prefetch", "datacenter_ip", "device_farm"}
    for rule in RULES:
        assert (rule.weight >= line) == (rule.code in strong), rule.code


def test_carrier_nat_evidence_never_adds_up_to_a_filter():
    # Everything that many people behind one carrier IP can produce together: the IP and
    # /24 counts, no referer, and visitor keys shared by identical phones without cookie.
    nat = [
        WEIGHT["ip_velocity"],
        WEIGHT["affiliate_ip_velocity"],
        WEIGHT["subnet_burst"],
        NO_REFERER_WEIGHT,
        COOKIELESS_WEIGHT["repeat_visitor"],
        COOKIELESS_WEIGHT["visitor_velocity"],
    ]
    assert sum(nat) < FraudConfig().invalid_click_score


def test_outside_the_target_countries_filters_only_with_other_evidence():
    # Travellers and cross-border shoppers are people: their click counts unless the
    # country comes with something else, such as another weak signal or a burst.
    line = FraudConfig().invalid_click_score
    assert WEIGHT["outside_target_country"] + NO_REFERER_WEIGHT < line
    assert WEIGHT["outside_target_country"] + WEIGHT["referer_mismatch"] < line
    assert WEIGHT["outside_target_country"] + WEIGHT["visitor_velocity"] >= line


def test_verdict_against_the_program_line():
    signals = [Signal("datacenter_ip", 50, ""), Signal("ip_velocity", 15, "")]
    assert rules.verdict(signals, FraudConfig()) == (65, "datacenter_ip,ip_velocity", True)
    assert rules.verdict(signals, FraudConfig(invalid_click_score=70))[2] is False
    assert rules.verdict([], FraudConfig()) == (0, "", False)
    assert score(signals) == 65


# --- the windows -----------------------------------------------------------------------


def test_windows_count_per_key_and_slide():
    w = ClickWindows(window_seconds=60, max_keys=1000)
    t0 = 1_000_000.0
    ip, other_ip = rules.ip_number("198.51.100.7"), rules.ip_number("198.51.100.8")
    for i in range(10):
        counts = w.observe_click(t0 + i, 1, 9, ip, "v" * 32, "")
    # ip per link, ip per affiliate, visitor per link, visitor per affiliate, /24, model, named
    assert counts == (10, 10, 10, 10, 10, 0, 0)
    assert w.observe_click(t0 + 10, 2, 9, ip, "v" * 32, "") == (1, 11, 1, 11, 11, 0, 0)
    assert w.observe_click(t0 + 11, 1, 9, ip, "v" * 32, "")[:4] == (11, 12, 11, 12)
    # Per-link counts are exact although kept from a key's second click on.
    assert w.observe_click(t0 + 12, 5, 9, other_ip, "w" * 32, "")[0] == 1
    assert w.observe_click(t0 + 13, 6, 9, other_ip, "w" * 32, "")[0] == 1
    assert w.observe_click(t0 + 14, 5, 9, other_ip, "w" * 32, "")[0] == 2
    assert w.observe_click(t0 + 15, 7, 9, other_ip, "w" * 32, "SM-A515F")[5:] == (1, 1)
    # 90 s later half of the previous window still lies inside the sliding one; it is
    # read from the key's second click in the new window on.
    assert w.observe_click(t0 + 90, 1, 9, ip, "v" * 32, "")[1] == 1
    assert w.observe_click(t0 + 90, 1, 9, ip, "v" * 32, "")[1] == 2 + 6  # 12 * 0.5
    # Two windows later nothing is left.
    assert w.observe_click(t0 + 400, 1, 9, ip, "v" * 32, "")[1] == 1


def test_windows_stay_bounded():
    w = ClickWindows(window_seconds=60, max_keys=100)
    for i in range(10_000):
        w.observe_click(1000.0 + i / 1000, i % 7, i % 3, i << 8, f"{i:032x}", f"M{i}")
        w.observe_click(1000.0 + i / 1000, i % 5, i % 3, i << 8, f"{i:032x}", f"M{i}")
    assert max(w.sizes()) <= 200


# --- user agents and networks ----------------------------------------------------------


def test_user_agents_name_the_list_and_pattern_of_a_bot():
    agents = user_agents()
    info = agents.inspect(GOOGLEBOT)
    assert info.device == "bot" and info.bot == r"crawler-user-agents: Googlebot\/"
    assert agents.inspect("curl/8.4.0").bot is not None
    assert agents.inspect("python-requests/2.31.0").bot is not None
    assert agents.inspect("Mozilla/5.0 (compatible; YandexBot/3.0)").bot.startswith(
        "crawlerdetect: "
    )
    for browser in (IPHONE_WECHAT, ANDROID.format(model="SM-S918B")):
        assert agents.inspect(browser).bot is None, browser
    assert agents.inspect("").device == "other"


def test_crawlerdetect_exclusions_are_honoured():
    # "Yandex(?!Search)": the lookahead RE2 cannot run is checked by Python's re.
    agents = user_agents()
    assert agents.inspect("Mozilla/5.0 YandexSearch/9.1 Mobile Safari/537.36").bot is None


def test_exceptions_leave_ordinary_browsers_out():
    instagram = (
        "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/"
        "537.36 (KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 "
        "Instagram 406.0.0.58.159 Android (35/15; 480dpi; 1080x2400; OPPO; CPH2557)"
    )
    assert user_agents().inspect(instagram).bot is None
    strict = UserAgents(BotPatterns(exceptions=()))
    assert strict.inspect(instagram).bot == r"crawler-user-agents: AP3A\.240617\.008"


def test_device_models():
    assert device_model(ANDROID.format(model="V2134A")) == "V2134A"
    assert device_model("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36") == (
        "SM-S918B"
    )
    assert device_model("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36") == ""
    assert device_model("Mozilla/5.0 (Linux; U; Android 4.4.2; en-us; GT-I9300 Build/K)") == (
        "GT-I9300"
    )
    assert device_model(IPHONE_WECHAT) == ""


@pytest.fixture(scope="module")
def networks():
    return hosting_networks(DATACENTER_NETWORKS)


def test_hosting_networks_from_the_shipped_asn_data(networks):
    assert len(networks) > 10_000
    assert networks.owner(rules.ip_number(AWS_IP)) == "AMAZON-02"
    assert networks.owner(rules.ip_number("142.93.1.1")) == "DIGITALOCEAN-ASN"
    assert networks.owner(rules.ip_number("2a01:4f8::1")) == "Hetzner Online GmbH"
    for consumer in (CHINA_MOBILE_IP, "1.1.1.1", "114.114.114.114", "192.168.1.1"):
        assert networks.owner(rules.ip_number(consumer)) is None, consumer
    assert networks.owner(None) is None


# --- the checks together: carrier NAT is not filtered, a server farm is ---------------


def _checks(networks) -> ClickChecks:
    return ClickChecks(thresholds=T, agents=user_agents(), networks=networks)


def _score(checks, at, *, ip, ua, visitor, cookie, link_id=1, referer=""):
    agent = checks.agents.inspect(ua)
    signals = checks.signals(
        ip=ip,
        agent=agent,
        referer=referer,
        country="CN",
        visitor=visitor,
        has_cookie=cookie,
        method="GET",
        purpose="",
        link_id=link_id,
        affiliate_id=7,
        at=at,
    )
    return rules.verdict(signals, FraudConfig())


MODELS = ["V2134A", "SM-S918B", "PGT-AN00", "M2012K11AC", "CPH2557", "NOH-AN00", "22081212C"]


def test_carrier_nat_organic_traffic_is_not_filtered(networks):
    checks = _checks(networks)
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    worst = 0
    # Ten minutes of a popular WeChat post: two clicks a second behind one carrier IP, on
    # three of the affiliate's links, each a different person (phone model, cookie) …
    for i in range(1200):
        ua = ANDROID.format(model=MODELS[i % len(MODELS)]).replace("8.0.42", f"8.0.{i % 50}")
        total, _, invalid = _score(
            checks,
            start + timedelta(seconds=i / 2),
            ip=CHINA_MOBILE_IP,
            ua=ua,
            visitor=f"{i:032x}",
            cookie=i % 3 != 0,
            link_id=1 + i % 3,
        )
        assert not invalid, (i, total)
        worst = max(worst, total)
    # … and identical iPhones without cookies, which share one visitor key per IP.
    for i in range(600):
        total, reasons, invalid = _score(
            checks,
            start + timedelta(minutes=20, seconds=i / 2),
            ip=CHINA_MOBILE_IP,
            ua=IPHONE_WECHAT,
            visitor="f" * 32,
            cookie=False,
        )
        assert not invalid, (i, total, reasons)
        worst = max(worst, total)
    assert 0 < worst < 60


def test_a_server_hammering_a_link_is_filtered_with_its_evidence(networks):
    checks = _checks(networks)
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    results = [
        _score(
            checks,
            start + timedelta(seconds=i),
            ip=AWS_IP,
            ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36",
            visitor="a" * 32,
            cookie=False,
        )
        for i in range(25)
    ]
    assert results[0][:2] == (65, "datacenter_ip,referer_mismatch")  # filtered at once
    assert results[0][2]
    total, reasons, invalid = results[-1]
    assert invalid and total == 60 + 15 + 5 + 10 + 5  # no referer either
    for code in ("datacenter_ip", "ip_velocity", "repeat_visitor", "visitor_velocity"):
        assert code in reasons.split(",")


def test_a_device_farm_is_flagged_by_model(networks):
    checks = _checks(networks)
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    reasons = ""
    for i in range(30):
        _, reasons, _ = _score(
            checks,
            start + timedelta(seconds=i),
            ip=f"10.{i}.0.1",
            ua=ANDROID.format(model="V2134A"),
            visitor=f"{i:032x}",
            cookie=True,
        )
    assert "device_model_burst" in reasons


def test_device_farm_rule_needs_many_clicks_and_few_models():
    ip = rules.ip_number("113.88.123.40")
    assert rules.device_farm(5, ["MI 8 Lite"], T, ip) is None  # under 6 clicks
    assert rules.device_farm(6, ["A", "B", "C"], T, None) is None
    s = rules.device_farm(6, ["Redmi Note 8", "MI 8 Lite"], T, ip)
    assert s.weight == 60
    assert s.evidence == (
        "6 clicks from 113.88.123.0/24 on this affiliate's links in 600 s name only 2 phone "
        "models (MI 8 Lite, Redmi Note 8; threshold 6 clicks, at most 3 models)"
    )
    assert rules.device_farm(9, ["A", "B", "C", "D"], T, ip) is None
    later = rules.known_farm(2 * 3600, T, ip)
    assert later.weight == 60 and later.evidence == (
        "113.88.123.0/24 was caught as a device farm on this affiliate's links 2.0 h ago "
        "(remembered 24 h)"
    )
    assert rules.known_farm(24 * 3600, T, ip) is None


FARM_MODELS = ("Redmi Note 8", "Redmi Note 8 Pro", "MI 8 Lite")


def _farm_click(checks, at, i, *, affiliate_id=7, net="113.88.123"):
    agent = checks.agents.inspect(ANDROID.format(model=FARM_MODELS[i % 3]))
    signals = checks.signals(
        ip=f"{net}.{10 + i % 200}",
        agent=agent,
        referer="",
        country="CN",
        visitor=f"{i:032x}",
        has_cookie=False,
        method="GET",
        purpose="",
        link_id=1,
        affiliate_id=affiliate_id,
        at=at,
    )
    return rules.verdict(signals, FraudConfig())


def test_a_device_farm_is_caught_in_its_burst_and_remembered(networks):
    checks = _checks(networks)
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    # Paced clicks (20 s apart) from one /24, three phone models: caught at the 6th click.
    burst = [_farm_click(checks, start + timedelta(seconds=20 * i), i) for i in range(20)]
    assert [r[2] for r in burst] == [False] * 5 + [True] * 15
    assert "device_farm" in burst[5][1]
    # Five hours later the farm's next burst is caught from its first click …
    later = _farm_click(checks, start + timedelta(hours=5), 0)
    assert later[2] and "device_farm" in later[1]
    # … but only on that affiliate's links, and only for the memory's length.
    assert not _farm_click(checks, start + timedelta(hours=5), 0, affiliate_id=8)[2]
    assert not _farm_click(checks, start + timedelta(hours=30), 0)[2]


def test_carrier_nat_phones_of_many_models_are_no_farm(networks):
    checks = _checks(networks)
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    # A post in a group: 60 Android users behind one carrier address in ten minutes, the
    # popular models repeating (the most common makes 3 of every 7 clicks).
    popular = ["V2134A", "V2134A", "V2134A", *MODELS[1:5]]
    for i in range(60):
        total, reasons, invalid = _score(
            checks,
            start + timedelta(seconds=10 * i),
            ip=CHINA_MOBILE_IP,
            ua=ANDROID.format(model=popular[i % len(popular)]),
            visitor=f"{i:032x}",
            cookie=True,
        )
        assert not invalid and "device_farm" not in reasons, (i, total, reasons)


def test_switched_off_checks_keep_only_declared_bots_and_head():
    checks = ClickChecks(thresholds=T, agents=user_agents(), enabled=False)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    for _ in range(50):
        total, reasons, _ = _score(
            checks, at, ip=AWS_IP, ua="Mozilla/5.0", visitor="b" * 32, cookie=False
        )
    assert (total, reasons) == (0, "")
    assert _score(checks, at, ip=AWS_IP, ua=GOOGLEBOT, visitor="c" * 32, cookie=False)[1] == (
        "bot_ua"
    )


def test_pairs_of_weak_signals_stay_below_the_line():
    weak = [
        r.weight
        for r in RULES
        if r.weight < 60 and r.code not in ("datacenter_ip", "visitor_velocity")
    ]
    assert all(a + b < 60 for a, b in combinations(weak, 2))
