"""Click-time traffic quality: the tracker's in-memory windows and the rules applied.

No database read: a click is judged from its request, the cached link (with its program
and the affiliate's declared channels), the user-agent lists and hosting networks loaded
at start, and counters over recent clicks kept in this process's memory. Those counters
are per tracker process: with several workers or nodes each sees its share of the
traffic, so thresholds are met later than with one (docs/fraud-rules.md).
"""

from __future__ import annotations

import threading
from datetime import datetime

from tuike.adapters.networks import NO_NETWORKS, HostingNetworks, hosting_networks
from tuike.adapters.useragent import UserAgentInfo, UserAgents, user_agents
from tuike.config import Settings
from tuike.domain.fraud import Signal
from tuike.domain.fraud import click as rules
from tuike.domain.fraud.click import NO_CHANNELS, ClickThresholds, DeclaredChannels

# Counter families, in the order ClickWindows.observe returns their counts.
IP_LINK, IP_AFFILIATE, VISITOR_LINK, VISITOR_AFFILIATE, SUBNET, MODEL, AFFILIATE = range(7)
FAMILIES = 7


class ClickWindows:
    """Clicks per key over the last window, for several kinds of key, in bounded memory.

    A sliding window approximated by two fixed ones (the current and the previous, the
    latter weighted by how much of it still lies inside the sliding window): O(1) per
    click and key, exact while traffic is steady. Keys are hashes of (link or affiliate,
    IP or visitor …). Each kind keeps at most ``max_keys`` keys per window: past that its
    window restarts early, so under very heavy traffic the window shortens rather than
    memory growing (~100 bytes per key).
    """

    def __init__(self, *, window_seconds: float, max_keys: int) -> None:
        self._window = float(window_seconds)
        self._max = max_keys
        self._start = 0.0
        self._cur: list[dict[int, int]] = [{} for _ in range(FAMILIES)]
        self._prev: list[dict[int, int]] = [{} for _ in range(FAMILIES)]
        self._lock = threading.Lock()

    def observe(self, now: float, keys: tuple[int | None, ...]) -> list[int]:
        """Count one click under each key (None: not counted); return the window counts."""
        with self._lock:
            elapsed = now - self._start
            if elapsed >= self._window:
                if elapsed >= 2 * self._window:
                    self._prev = [{} for _ in range(FAMILIES)]
                    self._start = now
                else:
                    self._prev = self._cur
                    self._start += self._window
                self._cur = [{} for _ in range(FAMILIES)]
                elapsed = now - self._start
            # How much of the previous window the sliding window still covers (clock
            # going backwards, as a replay may: all of it).
            left = 1.0 - elapsed / self._window if elapsed >= 0 else 1.0
            counts = []
            for family, key in enumerate(keys):
                if key is None:
                    counts.append(0)
                    continue
                cur = self._cur[family]
                n = cur.get(key, 0) + 1
                if n == 1 and len(cur) >= self._max:
                    self._prev[family] = cur
                    cur = self._cur[family] = {}
                cur[key] = n
                before = self._prev[family].get(key, 0)
                counts.append(n + int(before * left + 0.5) if before else n)
            return counts

    def sizes(self) -> list[int]:
        """Return how many keys each kind holds (both windows), for tests and monitoring."""
        with self._lock:
            return [len(c) + len(p) for c, p in zip(self._cur, self._prev, strict=True)]


class ClickChecks:
    """The click-time rules with what they need: user agents, networks, windows."""

    def __init__(
        self,
        *,
        thresholds: ClickThresholds,
        agents: UserAgents,
        networks: HostingNetworks = NO_NETWORKS,
        enabled: bool = True,
        max_keys: int = 50_000,
    ) -> None:
        self.thresholds = thresholds
        self.agents = agents
        self.networks = networks
        self.enabled = enabled
        self.windows = ClickWindows(window_seconds=thresholds.window_seconds, max_keys=max_keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickChecks:
        """Build the checks a tracker process runs (loads the ASN data once per process)."""
        thresholds = ClickThresholds(
            window_seconds=settings.fraud_window_seconds,
            repeat_clicks=settings.fraud_repeat_clicks,
            visitor_clicks=settings.fraud_visitor_clicks,
            ip_link_clicks=settings.fraud_ip_link_clicks,
            ip_affiliate_clicks=settings.fraud_ip_affiliate_clicks,
            subnet_clicks=settings.fraud_subnet_clicks,
            device_model_clicks=settings.fraud_device_model_clicks,
            device_model_share=settings.fraud_device_model_share,
        )
        exceptions = tuple(e for e in settings.fraud_bot_ua_exceptions.split(",") if e.strip())
        enabled = settings.fraud_click_checks
        networks = (
            hosting_networks(settings.fraud_datacenter_networks, settings.fraud_asn_data)
            if enabled
            else NO_NETWORKS
        )
        return cls(
            thresholds=thresholds,
            agents=user_agents(exceptions),
            networks=networks,
            enabled=enabled,
            max_keys=settings.fraud_window_keys,
        )

    def signals(
        self,
        *,
        ip: str | None,
        agent: UserAgentInfo,
        referer: str,
        country: str,
        visitor: str,
        has_cookie: bool,
        method: str,
        purpose: str,
        link_id: int,
        affiliate_id: int,
        channels: DeclaredChannels = NO_CHANNELS,
        targets: frozenset[str] = frozenset(),
        at: datetime,
    ) -> list[Signal]:
        """Return the signals of one click (and count it in the windows)."""
        found: list[Signal | None] = [
            rules.bot_ua(agent.bot),
            rules.head_or_prefetch(method, purpose),
        ]
        if not self.enabled:
            return [s for s in found if s is not None]
        t = self.thresholds
        ip_n = rules.ip_number(ip)
        model = agent.model
        counts = self.windows.observe(
            at.timestamp(),
            (
                None if ip_n is None else hash((link_id, ip_n)),
                None if ip_n is None else hash((affiliate_id, ip_n)),
                hash((link_id, visitor)),
                hash((affiliate_id, visitor)),
                None if ip_n is None else hash((affiliate_id, rules.subnet_of(ip_n))),
                hash((affiliate_id, model)) if model else None,
                affiliate_id,
            ),
        )
        found += (
            rules.outside_target_country(country, targets),
            rules.datacenter_ip(self.networks.owner(ip_n), ip),
            rules.visitor_velocity(counts[VISITOR_AFFILIATE], t, cookie=has_cookie),
            rules.referer_mismatch(referer, channels),
            rules.device_model_burst(counts[MODEL], counts[AFFILIATE], t, model),
            rules.repeat_visitor(counts[VISITOR_LINK], t, cookie=has_cookie),
            rules.ip_velocity(counts[IP_LINK], t, ip),
            rules.affiliate_ip_velocity(counts[IP_AFFILIATE], t, ip),
            rules.subnet_burst(counts[SUBNET], t, ip_n),
        )
        return [s for s in found if s is not None]


def declared_bots_only() -> ClickChecks:
    """Return checks that only flag declared bots and HEAD/prefetch requests (no I/O)."""
    return ClickChecks(thresholds=ClickThresholds(), agents=user_agents(), enabled=False)
