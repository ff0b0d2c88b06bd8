"""Click-time traffic quality: the tracker's in-memory windows and the rules applied.

No database read: a click is judged from its request, the cached link (with its program
and the affiliate's declared channels), the user-agent lists and hosting networks loaded
at start, and counters over recent clicks kept in this process's memory. Those counters
are per tracker process: with several workers or nodes each sees its share of the
traffic, so thresholds are met later than with one (docs/fraud-rules.md).
"""

from __future__ import annotations

import gc
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
_COUNT = (1 << 24) - 1  # an affiliate-level count; the link of the first click above it


class ClickWindows:
    """Clicks per key over the last window, for several kinds of key, in bounded memory.

    A sliding window approximated by two fixed ones (the current and the previous, the
    latter weighted by how much of it still lies inside the sliding window): O(1) per
    click and key, exact while traffic is steady. The previous window is read from a
    key's second click in the current one on: most keys (an IP, a visitor) click once per
    window, and skipping that lookup saves a third of the work; a key that keeps clicking
    across windows has its first click of each window counted without its past. Likewise
    an IP's or visitor's clicks per link are only kept from its second click on the
    affiliate's links in the window on (the affiliate-level count remembers the link of
    the first), so that most clicks touch three tables, not five. Keys are
    integers made from (link or affiliate, IP or visitor …). Each kind keeps at most
    ``max_keys`` keys per window: past that its window restarts early, so under very heavy
    traffic the window shortens rather than memory growing (~100 bytes per key).

    Not locked: the tracker counts from its event loop, one click at a time. Were two
    threads to count at once, a click could be missed or counted twice; the counts are
    estimates anyway.
    """

    def __init__(self, *, window_seconds: float, max_keys: int) -> None:
        self._window = float(window_seconds)
        self._max = max_keys
        self._start = 0.0
        self._cur: list[dict[int, int]] = [{} for _ in range(FAMILIES)]
        self._prev: list[dict[int, int]] = [{} for _ in range(FAMILIES)]

    def _left(self, now: float) -> float:
        """Move to the window holding ``now``; return how much of the previous one is left."""
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
        # A clock going backwards (a replay may): all of the previous window.
        return 1.0 - elapsed / self._window if elapsed >= 0 else 1.0

    def observe_click(
        self,
        now: float,
        link_id: int,
        affiliate_id: int,
        ip: int | None,
        visitor: str,
        model: str,
    ) -> tuple[int, int, int, int, int, int, int]:
        """Count a click under its keys; return the counts in the FAMILIES order.

        Written out for the tracker's hot path (no call per key). The keys are made with
        integer arithmetic: a link or affiliate id in the low bits of an address or a
        visitor's hash shifted left, or mixed into a model's hash (one table per kind of
        key, so links and affiliates never meet). The device share counts only clicks
        that name a phone model.
        """
        left = self._left(now)
        cur, prev, limit = self._cur, self._prev, self._max
        # Each block: count the click under one key, add what the previous window left.
        if ip is None:
            ip_link = ip_affiliate = subnet = 0
        else:
            wide = ip << 32
            k = wide | affiliate_id
            d = cur[IP_AFFILIATE]
            packed = d.get(k)
            if packed is None:  # the IP's first click on the affiliate in this window
                if len(d) >= limit:
                    d = self._restart(IP_AFFILIATE)
                d[k] = (link_id << 24) | 1
                ip_affiliate = ip_link = 1
            else:
                d[k] = packed + 1
                ip_affiliate = (packed & _COUNT) + 1
                ip_link = self._link_count(IP_LINK, wide, link_id, packed, ip_affiliate, left)
                before = prev[IP_AFFILIATE].get(k)
                if before:
                    ip_affiliate += int((before & _COUNT) * left + 0.5)
            net = ip >> 8 if ip < 1 << 32 else ip >> 80
            k = (net << 32) | affiliate_id
            d = cur[SUBNET]
            subnet = d.get(k, 0) + 1
            if subnet == 1 and len(d) >= limit:
                d = self._restart(SUBNET)
            d[k] = subnet
            if subnet > 1:
                before = prev[SUBNET].get(k)
                if before:
                    subnet += int(before * left + 0.5)
        visit = hash(visitor)
        k = visit ^ affiliate_id
        d = cur[VISITOR_AFFILIATE]
        packed = d.get(k)
        if packed is None:
            if len(d) >= limit:
                d = self._restart(VISITOR_AFFILIATE)
            d[k] = (link_id << 24) | 1
            visitor_affiliate = visitor_link = 1
        else:
            d[k] = packed + 1
            visitor_affiliate = (packed & _COUNT) + 1
            visitor_link = self._link_count(
                VISITOR_LINK, visit << 64, link_id, packed, visitor_affiliate, left
            )
            before = prev[VISITOR_AFFILIATE].get(k)
            if before:
                visitor_affiliate += int((before & _COUNT) * left + 0.5)
        if model:
            k = hash(model) ^ affiliate_id
            d = cur[MODEL]
            same_model = d.get(k, 0) + 1
            if same_model == 1 and len(d) >= limit:
                d = self._restart(MODEL)
            d[k] = same_model
            if same_model > 1:
                before = prev[MODEL].get(k)
                if before:
                    same_model += int(before * left + 0.5)
            k = affiliate_id
            d = cur[AFFILIATE]
            named = d.get(k, 0) + 1
            if named == 1 and len(d) >= limit:
                d = self._restart(AFFILIATE)
            d[k] = named
            if named > 1:
                before = prev[AFFILIATE].get(k)
                if before:
                    named += int(before * left + 0.5)
        else:
            same_model = named = 0
        return (
            ip_link,
            ip_affiliate,
            visitor_link,
            visitor_affiliate,
            subnet,
            same_model,
            named,
        )

    def _restart(self, family: int) -> dict[int, int]:
        """Start a kind's window early (it holds ``max_keys``); return its new table."""
        self._prev[family] = self._cur[family]
        self._cur[family] = {}
        return self._cur[family]

    def _link_count(
        self, family: int, base: int, link_id: int, packed: int, clicks: int, left: float
    ) -> int:
        """Count a click of an IP or visitor (``base``) on a link, from its second click on.

        ``packed`` is its count on the affiliate with, above it, the link of its first
        click: at the second click that first click is added to its link's count, so the
        link counts are exact though the (common) single clicks never reach this table.
        """
        d = self._cur[family]
        if clicks == 2:  # the first click, not counted per link then
            first = base | packed >> 24
            d[first] = d.get(first, 0) + 1
        k = base | link_id
        n = d.get(k, 0) + 1
        if n == 1 and len(d) >= self._max:
            d = self._restart(family)
        d[k] = n
        if n > 1:
            before = self._prev[family].get(k)
            if before:
                n += int(before * left + 0.5)
        return n

    def sizes(self) -> list[int]:
        """Return how many keys each kind holds (both windows), for tests and monitoring."""
        return [len(c) + len(p) for c, p in zip(self._cur, self._prev, strict=True)]


class FarmWatch:
    """Clicks naming a phone model per (/24, affiliate), and the /24s caught as farms.

    A device farm is a rack of a few phone models on one network: many clicks from one
    /24 that name only a few models. Each (/24, affiliate) key keeps, for a fixed window
    from its first click, its count and the distinct models seen, up to one more than the
    farm's limit (past that the key is diverse and only counted). A caught key is
    remembered for ``memory`` seconds, so that every click of the farm's later bursts is
    caught from the first. Both tables hold at most ``max_keys`` keys: past that the
    window table restarts and expired catches are dropped. Not locked, like ClickWindows.
    """

    def __init__(self, *, window: float, memory: float, max_models: int, max_keys: int) -> None:
        self._window = float(window)
        self._memory = float(memory)
        self._max_models = max_models
        self._max = max_keys
        # key -> (start, clicks, the models seen or None when more than max_models)
        self._seen: dict[int, tuple[float, int, tuple[str, ...] | None]] = {}
        self.caught: dict[int, float] = {}  # key -> when it was caught

    def caught_ago(self, now: float, key: int) -> float | None:
        """Return how long ago the key was caught as a farm, if it still is."""
        at = self.caught.get(key)
        if at is None:
            return None
        if now - at >= self._memory:
            del self.caught[key]
            return None
        return max(now - at, 0.0)

    def observe(self, now: float, key: int, model: str) -> tuple[int, tuple[str, ...] | None]:
        """Count a click naming ``model``; return the key's clicks and models (None: many)."""
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self._window or now < entry[0]:
            if entry is None and len(self._seen) >= self._max:
                self._seen = {}
            start, clicks, models = now, 1, (model,)
        else:
            start, clicks, models = entry[0], entry[1] + 1, entry[2]
            if models is not None and model not in models:
                models = None if len(models) >= self._max_models else (*models, model)
        # Tuples of numbers and strings: the garbage collector stops tracking them, so a
        # full table does not lengthen its collections (lists would stay tracked).
        self._seen[key] = (start, clicks, models)
        return clicks, models

    def catch(self, now: float, key: int) -> None:
        """Remember the key as a farm (from now on, for ``memory`` seconds)."""
        if self._memory <= 0 or key in self.caught:
            return
        if len(self.caught) >= self._max:
            self.caught = {k: at for k, at in self.caught.items() if now - at < self._memory}
            if len(self.caught) >= self._max:
                return
        self.caught[key] = now


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
        self.farms = FarmWatch(
            window=thresholds.farm_window_seconds,
            memory=thresholds.farm_memory_seconds,
            max_models=thresholds.farm_models,
            max_keys=max_keys,
        )

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
            farm_window_seconds=settings.fraud_farm_window_seconds,
            farm_clicks=settings.fraud_farm_clicks,
            farm_models=settings.fraud_farm_models,
            farm_memory_seconds=settings.fraud_farm_memory_seconds,
        )
        exceptions = tuple(e for e in settings.fraud_bot_ua_exceptions.split(",") if e.strip())
        enabled = settings.fraud_click_checks
        networks = (
            hosting_networks(settings.fraud_datacenter_networks, settings.fraud_asn_data)
            if enabled
            else NO_NETWORKS
        )
        checks = cls(
            thresholds=thresholds,
            agents=user_agents(exceptions),
            networks=networks,
            enabled=enabled,
            max_keys=settings.fraud_window_keys,
        )
        # Loading leaves tens of thousands of new objects: collect them now, at start,
        # rather than in a full collection that pauses the first seconds of clicks.
        gc.collect()
        return checks

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
        """Return the signals of one click (and count it in the windows).

        Each rule's own function decides and words the evidence; the thresholds are also
        tested here first so that a click that fires nothing calls almost nothing (the
        tracker's hot path).
        """
        found: list[Signal] = []
        if agent.bot is not None:
            found.append(rules.bot_ua(agent.bot))
        if method != "GET" or purpose:
            head = rules.head_or_prefetch(method, purpose)
            if head is not None:
                found.append(head)
        if not self.enabled:
            return found
        t = self.thresholds
        ip_n = rules.ip_number(ip)
        model = agent.model
        now = at.timestamp()
        ip_link, ip_aff, visitor_link, visitor_aff, subnet, same_model, named = (
            self.windows.observe_click(now, link_id, affiliate_id, ip_n, visitor, model)
        )
        if ip_n is not None:
            farms = self.farms
            net = (rules.subnet_of(ip_n) << 32) | affiliate_id
            ago = farms.caught_ago(now, net) if farms.caught else None
            known = rules.known_farm(ago, t, ip_n) if ago is not None else None
            if known is not None:
                found.append(known)
            elif model:
                clicks, models = farms.observe(now, net, model)
                if clicks >= t.farm_clicks and models is not None:
                    farm = rules.device_farm(clicks, models, t, ip_n)
                    if farm is not None:
                        found.append(farm)
                        farms.catch(now, net)
        if targets and country and country not in targets:
            found.append(rules.outside_target_country(country, targets))
        owner = self.networks.owner(ip_n)
        if owner is not None:
            found.append(rules.datacenter_ip(owner, ip))
        if visitor_aff >= t.visitor_clicks:
            found.append(rules.visitor_velocity(visitor_aff, t, cookie=has_cookie))
        if not referer:
            if not channels.no_referer:
                found.append(rules.NO_REFERER)
        elif channels.hosts:
            mismatch = rules.referer_mismatch(referer, channels)
            if mismatch is not None:
                found.append(mismatch)
        if same_model >= t.device_model_clicks:
            burst = rules.device_model_burst(same_model, named, t, model)
            if burst is not None:
                found.append(burst)
        if visitor_link >= t.repeat_clicks:
            found.append(rules.repeat_visitor(visitor_link, t, cookie=has_cookie))
        if ip_link >= t.ip_link_clicks:
            found.append(rules.ip_velocity(ip_link, t, ip))
        if ip_aff >= t.ip_affiliate_clicks:
            found.append(rules.affiliate_ip_velocity(ip_aff, t, ip))
        if subnet >= t.subnet_clicks:
            found.append(rules.subnet_burst(subnet, t, ip_n))
        return found
