"""Click-stage traffic-quality rules (see docs/fraud-rules.md).

Each rule is a pure function of what the tracker knows at click time (the request, the
cached link, its program and affiliate, counts from in-memory windows) returning a
``Signal`` with its evidence, or None. Weights are chosen so that one weak signal never
filters a click on its own (a program filters at 60 by default) while strong evidence
does: a declared bot, a HEAD or prefetch request, a hosting network, a device farm.
Signals that share their evidence stay below the line together: carrier-grade NAT puts
many people behind one IP, so the IP and /24 velocities plus a missing referer add up to
55 at most; the farm rule needs few phone models among many clicks, which a NAT's
people do not show.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tuike.domain.fraud import FraudConfig, Rule, Signal, score

RULES: tuple[Rule, ...] = (
    Rule("bot_ua", "click", "Declared bot or crawler", "TUIKE_FRAUD_BOT_UA_EXCEPTIONS", 100),
    Rule("head_or_prefetch", "click", "HEAD, prefetch or preview request", "", 100),
    Rule(
        "outside_target_country",
        "click",
        "Country outside the program's target countries",
        "TUIKE_COUNTRY_HEADER",
        30,
    ),
    Rule(
        "device_farm",
        "click",
        "A device farm: many clicks from one /24 naming only a few phone models",
        "TUIKE_FRAUD_FARM_CLICKS",
        60,
    ),
    Rule(
        "datacenter_ip",
        "click",
        "Address of a data centre, cloud or hosting network",
        "TUIKE_FRAUD_DATACENTER_NETWORKS",
        60,
    ),
    Rule(
        "visitor_velocity",
        "click",
        "One visitor clicking many of an affiliate's links",
        "TUIKE_FRAUD_VISITOR_CLICKS",
        40,
    ),
    Rule(
        "referer_mismatch",
        "click",
        "Referer absent, or not one of the affiliate's declared channels",
        "",
        25,
    ),
    Rule(
        "device_model_burst",
        "click",
        "A burst of clicks from one device model",
        "TUIKE_FRAUD_DEVICE_MODEL_CLICKS",
        20,
    ),
    Rule(
        "repeat_visitor",
        "click",
        "The same visitor repeating the same link",
        "TUIKE_FRAUD_REPEAT_CLICKS",
        15,
    ),
    Rule(
        "ip_velocity",
        "click",
        "Many clicks from one IP on one link",
        "TUIKE_FRAUD_IP_LINK_CLICKS",
        15,
    ),
    Rule(
        "affiliate_ip_velocity",
        "click",
        "Many clicks from one IP on one affiliate's links",
        "TUIKE_FRAUD_IP_AFFILIATE_CLICKS",
        15,
    ),
    Rule(
        "subnet_burst",
        "click",
        "A burst of clicks from one /24 (IPv6: /48)",
        "TUIKE_FRAUD_SUBNET_CLICKS",
        5,
    ),
)
WEIGHT = {rule.code: rule.weight for rule in RULES}
# A visitor without the tracker's cookie is a hash of IP and user agent, which people
# behind one carrier NAT with the same phone and app share: weaker evidence.
COOKIELESS_WEIGHT = {"repeat_visitor": 5, "visitor_velocity": 10}
NO_REFERER_WEIGHT = 5
_V4_MAX = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class ClickThresholds:
    """The window and the counts at which the windowed rules fire (TUIKE_FRAUD_* settings)."""

    window_seconds: int = 60
    repeat_clicks: int = 3
    visitor_clicks: int = 10
    ip_link_clicks: int = 20
    ip_affiliate_clicks: int = 60
    subnet_clicks: int = 100
    device_model_clicks: int = 20
    device_model_share: int = 50  # percent of the affiliate's clicks in the window
    farm_window_seconds: int = 600
    farm_clicks: int = 6  # clicks naming a phone model from one /24 on one affiliate
    farm_models: int = 3  # ... naming at most this many models
    farm_memory_seconds: int = 86_400  # how long a caught /24 stays caught


@dataclass(frozen=True, slots=True)
class DeclaredChannels:
    """What an affiliate declared of where it promotes, as the referer rule needs it.

    ``hosts``: the web hosts of its websites, blogs, forums and SNS pages (``www.`` cut);
    ``no_referer``: it declared an IM group or an app, whose clicks carry no referer.
    """

    hosts: frozenset[str] = frozenset()
    no_referer: bool = False

    @classmethod
    def of(cls, channels: Iterable[tuple[str, str]]) -> DeclaredChannels:
        """Build from (kind, url) pairs."""
        hosts: set[str] = set()
        no_referer = False
        for kind, url in channels:
            if kind in ("im", "app"):
                no_referer = True
                continue
            host = referer_host(url if "//" in url else f"//{url.strip()}")
            if "." in host:
                hosts.add(host)
        return cls(frozenset(hosts), no_referer)


NO_CHANNELS = DeclaredChannels()


# --- addresses -----------------------------------------------------------------------


def ip_number(ip: str | None) -> int | None:
    """Return an IPv4 or IPv6 address as an integer (IPv4-mapped IPv6 as IPv4), or None."""
    if not ip:
        return None
    try:
        if ":" not in ip:
            return int.from_bytes(socket.inet_aton(ip), "big")
        n = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
    except (OSError, ValueError):
        return None
    return n & _V4_MAX if n >> 32 == 0xFFFF else n


def subnet_of(number: int) -> int:
    """Return a key for the /24 (IPv4) or /48 (IPv6) network of an address number."""
    return number >> 8 if number <= _V4_MAX else -(number >> 80)


def subnet_text(number: int) -> str:
    """Return the /24 or /48 network of an address number, written out."""
    if number <= _V4_MAX:
        return f"{socket.inet_ntoa((number >> 8 << 8).to_bytes(4, 'big'))}/24"
    prefix = number >> 80 << 80
    return f"{socket.inet_ntop(socket.AF_INET6, prefix.to_bytes(16, 'big'))}/48"


def referer_host(referer: str) -> str:
    """Return the host of a referer URL, lower case, without ``www.`` (no urllib: hot path)."""
    start = referer.find("//")
    rest = referer[start + 2 :] if start >= 0 else referer
    end = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if 0 <= i < end:
            end = i
    host = rest[:end].rpartition("@")[2]
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    else:
        host = host.partition(":")[0]
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


# --- the rules -----------------------------------------------------------------------


HEAD = Signal("head_or_prefetch", 100, "HEAD request")


def bot_ua(match: str | None) -> Signal | None:
    """A user agent that one of the crawler lists names (``match`` is list: pattern)."""
    if match is None:
        return None
    return Signal("bot_ua", WEIGHT["bot_ua"], f"user agent matches {match}")


def head_or_prefetch(method: str, purpose: str) -> Signal | None:
    """A HEAD request, or a request the browser marks as a prefetch or preview."""
    if method == "HEAD":
        return HEAD
    if purpose:
        lowered = purpose.lower()
        if "prefetch" in lowered or "preview" in lowered or "prerender" in lowered:
            return Signal(
                "head_or_prefetch",
                WEIGHT["head_or_prefetch"],
                f"request marked {purpose[:60]!r} (not a visit)",
            )
    return None


def outside_target_country(country: str, targets: frozenset[str]) -> Signal | None:
    """A known country that is not one of the program's target countries."""
    if not targets or not country or country in targets:
        return None
    return Signal(
        "outside_target_country",
        WEIGHT["outside_target_country"],
        f"country {country}, the program targets {', '.join(sorted(targets))}",
    )


def datacenter_ip(owner: str | None, ip: str | None) -> Signal | None:
    """An address in a data centre, cloud or hosting network (``owner`` from the ASN data)."""
    if owner is None:
        return None
    return Signal("datacenter_ip", WEIGHT["datacenter_ip"], f"{ip} belongs to {owner}")


def repeat_visitor(count: int, t: ClickThresholds, *, cookie: bool) -> Signal | None:
    """The same visitor's ``count``-th click on the same link inside the window."""
    if count < t.repeat_clicks:
        return None
    who = "visitor (tk_v cookie)" if cookie else "visitor without cookie (IP + user agent)"
    return Signal(
        "repeat_visitor",
        WEIGHT["repeat_visitor"] if cookie else COOKIELESS_WEIGHT["repeat_visitor"],
        f"{who}: {count} clicks on this link in {t.window_seconds} s (threshold {t.repeat_clicks})",
    )


def visitor_velocity(count: int, t: ClickThresholds, *, cookie: bool) -> Signal | None:
    """One visitor's ``count`` clicks on the affiliate's links inside the window."""
    if count < t.visitor_clicks:
        return None
    who = "visitor (tk_v cookie)" if cookie else "visitor without cookie (IP + user agent)"
    return Signal(
        "visitor_velocity",
        WEIGHT["visitor_velocity"] if cookie else COOKIELESS_WEIGHT["visitor_velocity"],
        f"{who}: {count} clicks on this affiliate's links in {t.window_seconds} s "
        f"(threshold {t.visitor_clicks})",
    )


def ip_velocity(count: int, t: ClickThresholds, ip: str | None) -> Signal | None:
    """``count`` clicks from one IP on one link inside the window."""
    if count < t.ip_link_clicks:
        return None
    return Signal(
        "ip_velocity",
        WEIGHT["ip_velocity"],
        f"{count} clicks from {ip} on this link in {t.window_seconds} s "
        f"(threshold {t.ip_link_clicks})",
    )


def affiliate_ip_velocity(count: int, t: ClickThresholds, ip: str | None) -> Signal | None:
    """``count`` clicks from one IP on one affiliate's links inside the window."""
    if count < t.ip_affiliate_clicks:
        return None
    return Signal(
        "affiliate_ip_velocity",
        WEIGHT["affiliate_ip_velocity"],
        f"{count} clicks from {ip} on this affiliate's links in {t.window_seconds} s "
        f"(threshold {t.ip_affiliate_clicks})",
    )


def subnet_burst(count: int, t: ClickThresholds, ip: int | None) -> Signal | None:
    """``count`` clicks from one /24 (/48) on one affiliate's links inside the window."""
    if count < t.subnet_clicks or ip is None:
        return None
    return Signal(
        "subnet_burst",
        WEIGHT["subnet_burst"],
        f"{count} clicks from {subnet_text(ip)} on this affiliate's links in "
        f"{t.window_seconds} s (threshold {t.subnet_clicks})",
    )


def device_model_burst(count: int, total: int, t: ClickThresholds, model: str) -> Signal | None:
    """``count`` of the affiliate's ``total`` clicks naming a model, in the window, are one."""
    if not model or count < t.device_model_clicks or count * 100 < total * t.device_model_share:
        return None
    return Signal(
        "device_model_burst",
        WEIGHT["device_model_burst"],
        f"{count} of the {total} clicks naming a phone model on this affiliate's links in "
        f"{t.window_seconds} s are one model, {model} (threshold {t.device_model_clicks} "
        f"and {t.device_model_share} %)",
    )


def device_farm(
    clicks: int, models: Sequence[str], t: ClickThresholds, ip: int | None
) -> Signal | None:
    """``clicks`` from one /24 on one affiliate's links, in the farm window, name ``models``."""
    if ip is None or clicks < t.farm_clicks or not models or len(models) > t.farm_models:
        return None
    return Signal(
        "device_farm",
        WEIGHT["device_farm"],
        f"{clicks} clicks from {subnet_text(ip)} on this affiliate's links in "
        f"{t.farm_window_seconds} s name only {len(models)} phone model"
        f"{'s' if len(models) > 1 else ''} ({', '.join(sorted(models))}; threshold "
        f"{t.farm_clicks} clicks, at most {t.farm_models} models)",
    )


def known_farm(caught_ago: float, t: ClickThresholds, ip: int | None) -> Signal | None:
    """A click from a /24 caught as a device farm on this affiliate ``caught_ago`` s ago."""
    if ip is None or caught_ago >= t.farm_memory_seconds:
        return None
    ago = f"{caught_ago / 3600:.1f} h" if caught_ago >= 3600 else f"{caught_ago / 60:.0f} min"
    return Signal(
        "device_farm",
        WEIGHT["device_farm"],
        f"{subnet_text(ip)} was caught as a device farm on this affiliate's links {ago} ago "
        f"(remembered {t.farm_memory_seconds / 3600:g} h)",
    )


NO_REFERER = Signal(
    "referer_mismatch",
    NO_REFERER_WEIGHT,
    "no referer, and the affiliate declared no IM or app channel",
)


def referer_mismatch(referer: str, channels: DeclaredChannels) -> Signal | None:
    """No referer (weak; expected of IM and apps), or one none of the declared hosts."""
    if not referer:
        return None if channels.no_referer else NO_REFERER
    if not channels.hosts:
        return None
    host = referer_host(referer)
    for declared in channels.hosts:
        if host == declared or host.endswith("." + declared):
            return None
    shown = ", ".join(sorted(channels.hosts)[:5])
    return Signal(
        "referer_mismatch",
        WEIGHT["referer_mismatch"],
        f"referer host {host or '(none)'} is not one of the affiliate's channels ({shown})",
    )


def verdict(signals: Sequence[Signal], config: FraudConfig) -> tuple[int, str, bool]:
    """Return (score, comma-separated codes, filtered) for a click's signals."""
    if not signals:
        return 0, "", False
    if len(signals) == 1:  # the common case: one weak signal (often no referer)
        only = signals[0]
        return only.weight, only.code, only.weight >= config.invalid_click_score
    total = score(signals)
    return total, ",".join(s.code for s in signals), total >= config.invalid_click_score
