"""Clicks: resolving a code from an in-process cache, and recording clicks with rollups."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from tuike.adapters.useragent import user_agents
from tuike.domain import ids
from tuike.domain.catalog import Link, Program
from tuike.domain.errors import InvalidField
from tuike.domain.fraud.click import (
    NO_CHANNELS,
    DeclaredChannels,
    bot_ua,
    head_or_prefetch,
    verdict,
)
from tuike.domain.privacy import store_ip, visitor_key
from tuike.domain.tracking import (
    NO_PARAMS,
    ClickParams,
    ClickRecord,
    landing_for,
    merge_subs,
    redirect_template,
    redirect_url,
)
from tuike.services.click_quality import ClickChecks
from tuike.storage import catalog as repo
from tuike.storage import versions
from tuike.storage.clicks import add_click_rollups, insert_clicks
from tuike.storage.db import Database

log = logging.getLogger("tuike.clicks")
CATALOG = "catalog"
MISS = object()


@dataclass(frozen=True, slots=True)
class Resolved:
    """A link with its program and whether the affiliate may still send traffic.

    ``channels`` is what the affiliate declared of where it promotes (the referer rule).
    ``template`` is the redirect of a click without a deep link, split where the click id
    goes (computed once per link, not once per click).
    """

    link: Link
    program: Program
    membership_ok: bool
    channels: DeclaredChannels = NO_CHANNELS
    template: tuple[str, str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        try:
            landing = landing_for(self.program, self.link, NO_PARAMS)
            template = redirect_template(self.program, landing)
        except (InvalidField, ValueError):
            template = None  # build_click works the URL out per click
        object.__setattr__(self, "template", template)

    @property
    def live(self) -> bool:
        """Tell whether the click goes to the landing page (else fallback or 410)."""
        return self.link.active and self.program.active and self.membership_ok


class LinkCache:
    """Link codes resolved in memory, bounded, reloaded when the catalog version moves.

    The version counter is read at most once per ``poll_seconds`` and by one caller at a
    time (the others keep answering from memory meanwhile), so a change made by another
    worker is seen within about that time and a cache hit costs no database read. A
    reload builds the new entries aside and swaps them in at once: clicks arriving during
    a reload are answered from the old entries, never sent to the database one by one.
    """

    def __init__(
        self, db: Database, *, max_entries: int = 100_000, poll_seconds: float = 1.0
    ) -> None:
        self._db = db
        self._max = max_entries
        self._poll = poll_seconds
        self._entries: OrderedDict[str, Resolved | None] = OrderedDict()
        self._programs: dict[int, Program] = {}
        self._version = -1
        self._checked = 0.0
        self._polling = False
        self._generation = 0  # moved by invalidate(): a poll begun before it is not trusted
        self._lock = threading.Lock()

    def _maybe_invalidate(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._checked < self._poll:
                return
            generation = self._generation
            self._polling = True
        try:
            with self._db.read() as conn:
                version = versions.current(conn, CATALOG)
            if version != self._version:
                # Reload in one pass rather than one miss (three queries) per link.
                self._load_all(version)
        except SQLAlchemyError as exc:
            # Database away: keep serving the links we know, ask again next poll.
            log.warning("link cache cannot read the catalog: %s", exc)
        finally:
            with self._lock:
                self._polling = False
                if generation == self._generation:
                    self._checked = now

    def _load_all(self, version: int) -> int:
        with self._db.read() as conn:
            programs = {p.id: p for p in repo.list_programs(conn)}
            approved = {
                (m.program_id, m.affiliate_id)
                for m in repo.list_memberships(conn, status="approved")
            }
            links = repo.recent_links(conn, self._max)
            channels = {
                a: DeclaredChannels.of(c) for a, c in repo.channels_by_affiliate(conn).items()
            }
        entries: OrderedDict[str, Resolved | None] = OrderedDict()
        for link in reversed(links):
            entries[link.code] = Resolved(
                link=link,
                program=programs[link.program_id],
                membership_ok=(link.program_id, link.affiliate_id) in approved,
                channels=channels.get(link.affiliate_id, NO_CHANNELS),
            )
        with self._lock:
            self._entries = entries
            self._programs = programs
            self._version = version
        return len(links)

    def warm(self) -> int:
        """Load the newest links, up to the bound, in one pass; return how many."""
        with self._db.read() as conn:
            version = versions.current(conn, CATALOG)
        return self._load_all(version)

    def refresh(self) -> None:
        """Read the version counter now, and reload the links if it moved (or never read)."""
        with self._lock:
            self._checked = 0.0
        self._maybe_invalidate()

    def invalidate(self) -> None:
        """Make the next lookup read the version counter (after a change in this process)."""
        with self._lock:
            self._generation += 1
            self._checked = 0.0

    def cached(self, code: str) -> Resolved | object | None:
        """Return the cached link for a code without touching the database, or MISS.

        MISS also for the one caller that finds the version counter due for a poll:
        ``resolve`` (which may read the database, so call it off the event loop) then
        does both. Everyone else keeps being answered from memory meanwhile.
        """
        with self._lock:
            if not self._polling and time.monotonic() - self._checked >= self._poll:
                self._polling = True  # this caller polls; resolve() clears the flag
                return MISS
            return self._entries.get(code, MISS)

    def resolve(self, code: str) -> Resolved | None:
        """Return the link behind a code, or None when there is no such code."""
        with self._lock:
            self._polling = False  # a poll claimed by cached() is done below
        self._maybe_invalidate()
        with self._lock:
            if code in self._entries:
                self._entries.move_to_end(code)
                return self._entries[code]
        resolved = self._load(code)
        with self._lock:
            self._entries[code] = resolved
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return resolved

    def _load(self, code: str) -> Resolved | None:
        with self._db.read() as conn:
            link = repo.get_link_by_code(conn, code)
            if link is None:
                return None
            program = self._programs.get(link.program_id) or repo.get_program(conn, link.program_id)
            membership = repo.get_membership(conn, link.program_id, link.affiliate_id)
            declared = repo.channels_by_affiliate(conn, link.affiliate_id)
        assert program is not None
        self._programs[program.id] = program
        return Resolved(
            link=link,
            program=program,
            membership_ok=membership is not None and membership.status == "approved",
            channels=DeclaredChannels.of(declared.get(link.affiliate_id, ())),
        )


class UniqueFilter:
    """Remembers (link, visitor) pairs for a window; bounded, oldest forgotten first."""

    def __init__(self, *, window: timedelta, max_entries: int) -> None:
        self._window = window.total_seconds()
        self._max = max_entries
        self._seen: OrderedDict[tuple[int, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, link_id: int, visitor: str, at: datetime) -> bool:
        """Return True if this is the visitor's first click on the link inside the window."""
        now = at.timestamp()
        key = (link_id, visitor)
        with self._lock:
            first = self._seen.get(key)
            if first is not None and now - first < self._window:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True


@dataclass(frozen=True, slots=True)
class Visit:
    """What the tracker knows of the visitor making a click.

    ``method`` is GET or HEAD; ``purpose`` what the browser said of a speculative request
    (``Sec-Purpose``/``Purpose: prefetch``, ``X-Purpose: preview``, ``X-Moz: prefetch``).
    """

    ip: str | None
    user_agent: str
    referer: str
    country: str
    visitor_cookie: str | None
    method: str = "GET"
    purpose: str = ""


def build_click(
    resolved: Resolved,
    params: ClickParams,
    visit: Visit,
    *,
    at: datetime,
    ip_storage: str,
    privacy_salt: str,
    uniques: UniqueFilter,
    checks: ClickChecks | None = None,
) -> ClickRecord:
    """Apply the click rules to one visit: landing URL, device, traffic quality, uniqueness.

    ``checks`` are the click-time fraud rules (docs/fraud-rules.md); without them only a
    declared bot or a HEAD/prefetch request is flagged. A click scoring the program's
    ``invalid_click_score`` is filtered: recorded, but not billable and never unique.
    Raises InvalidField for a deep link outside the program's allowed domains.
    """
    link, program = resolved.link, resolved.program
    click_id = ids.new_ulid(at)
    if params.deep_link is None and resolved.template is not None:
        prefix, suffix = resolved.template
        landing_url = prefix + click_id + suffix
    else:
        landing_url = redirect_url(program, landing_for(program, link, params), click_id)
    agent = (checks.agents if checks is not None else user_agents()).inspect(visit.user_agent)
    visitor = visitor_key(
        visitor_cookie=visit.visitor_cookie,
        ip=visit.ip,
        user_agent=visit.user_agent,
        salt=privacy_salt,
    )
    country = (visit.country or "")[:2].upper()
    if checks is not None:
        signals = checks.signals(
            ip=visit.ip,
            agent=agent,
            referer=visit.referer,
            country=country,
            visitor=visitor,
            has_cookie=visitor == visit.visitor_cookie,
            method=visit.method,
            purpose=visit.purpose,
            link_id=link.id,
            affiliate_id=link.affiliate_id,
            channels=resolved.channels,
            targets=program.fraud.target_countries,
            at=at,
        )
    else:
        found = (bot_ua(agent.bot), head_or_prefetch(visit.method, visit.purpose))
        signals = [s for s in found if s is not None]
    disabled = program.fraud.disabled
    if signals and disabled:
        signals = [s for s in signals if s.code not in disabled]
    fraud_score, reasons, invalid = verdict(signals, program.fraud)
    return ClickRecord(
        id=click_id,
        clicked_at=at,
        program_id=program.id,
        link_id=link.id,
        affiliate_id=link.affiliate_id,
        creative_id=link.creative_id,
        subs=merge_subs(link.subs, params.subs),
        aff_click_id=params.aff_click_id,
        landing_url=landing_url,
        ip=store_ip(visit.ip, ip_storage, privacy_salt),
        user_agent=visit.user_agent[:512],
        referer=visit.referer[:2048],
        country=country,
        device=agent.device,
        visitor=visitor,
        is_unique=not invalid and uniques.check(link.id, visitor, at),
        is_bot=agent.bot is not None,
        fraud_score=fraud_score,
        fraud_reasons=reasons,
        invalid=invalid,
    )


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def record_clicks(
    conn: Connection, records: Sequence[ClickRecord], *, method: str = "best"
) -> None:
    """Insert clicks and add them to the hourly rollups, aggregated per batch.

    A filtered (invalid) click counts in ``invalid_clicks`` only, never in ``clicks`` or
    ``unique_clicks``; ``bot_clicks`` counts declared bots, filtered or not (a program
    that switched ``bot_ua`` off has its bots count as clicks too).
    ``method``: see ``storage.clicks.insert_clicks`` (``executemany`` is a baseline).
    """
    if not records:
        return
    counts: Counter[tuple] = Counter()
    uniques: Counter[tuple] = Counter()
    bots: Counter[tuple] = Counter()
    invalid: Counter[tuple] = Counter()
    for c in records:
        key = (
            _hour(c.clicked_at),
            c.program_id,
            c.affiliate_id,
            c.link_id,
            c.creative_id or 0,
            *c.subs,
            c.country,
            c.device,
        )
        if c.invalid:
            invalid[key] += 1
            counts[key] += 0
        else:
            counts[key] += 1
            if c.is_unique:
                uniques[key] += 1
        if c.is_bot:
            bots[key] += 1
    insert_clicks(conn, records, method=method)
    add_click_rollups(
        conn,
        [(*key, 0, n, uniques[key], bots[key], invalid[key]) for key, n in counts.items()],
        method=method,
    )
