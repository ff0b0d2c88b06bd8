"""The affiliate directory ("Find affiliates"): the network's active affiliates, ranked by
quality-adjusted performance (``domain.ranking``), for merchants and the operator.

What a listing tells: the affiliate's name, channel kinds (and the host of its web
channels), the categories it performs in, its quality score and flag, and its EPC as a band
of the network. Never a figure of a program, since most of an affiliate's programs belong to
other merchants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Connection

from tuike.domain.catalog import CHANNEL_KINDS, Channel
from tuike.domain.errors import InvalidField
from tuike.domain.ranking import Candidate, epc_indexes, rank
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.storage import directory as q

WINDOW_DAYS = 30
WEB_KINDS = ("website", "blog")
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class DirectoryQuery:
    """Filters and page of the directory: a program category, a channel kind ("": any)."""

    category: str = ""
    channel: str = ""
    limit: int = 50
    offset: int = 0

    def checked(self) -> DirectoryQuery:
        """Return the query if it is valid (raises InvalidField)."""
        if self.channel and self.channel not in CHANNEL_KINDS:
            raise InvalidField("channel", f"must be one of {', '.join(CHANNEL_KINDS)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidField("limit", f"must be 1 to {MAX_LIMIT}")
        if self.offset < 0:
            raise InvalidField("offset", "must not be negative")
        return self


@dataclass(frozen=True, slots=True)
class Listing:
    """One affiliate in the directory; ``rank`` is its place in the filtered list (1: best)."""

    rank: int
    affiliate_id: int
    name: str
    channels: tuple[tuple[str, str], ...]  # (kind, host of a web channel or "")
    categories: tuple[str, ...]
    quality_score: int | None
    flagged: bool
    band: str


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    """A page of the directory, how many match in all, and the categories to filter by."""

    listings: list[Listing]
    total: int
    categories: list[str]


def _channel(c: Channel) -> tuple[str, str]:
    host = ""
    if c.kind in WEB_KINDS:
        parts = urlsplit(c.url if "://" in c.url else f"https://{c.url}")
        host = (parts.hostname or "") if parts.scheme in ("http", "https") else ""
    return c.kind, host


def find_affiliates(
    conn: Connection, query: DirectoryQuery, *, now: datetime | None = None
) -> DirectoryPage:
    """Rank the network's active affiliates and return the page the query asks for."""
    query = query.checked()
    now = now or utcnow()
    affiliates = [a for a in repo.list_affiliates(conn, with_channels=True) if a.status == "active"]
    indexes = epc_indexes(q.load_earnings(conn, now - timedelta(days=WINDOW_DAYS), now))
    ranked = rank(
        [Candidate(a.id, a.quality_score, a.quality_flagged) for a in affiliates], indexes
    )
    by_id = {a.id: a for a in affiliates}
    categories = q.categories_by_affiliate(conn)
    matching = [
        r
        for r in ranked
        if (not query.category or query.category in categories.get(r.affiliate_id, ()))
        and (
            not query.channel
            or any(c.kind == query.channel for c in by_id[r.affiliate_id].channels)
        )
    ]
    listings = []
    for place, r in enumerate(matching[query.offset : query.offset + query.limit]):
        a = by_id[r.affiliate_id]
        listings.append(
            Listing(
                rank=query.offset + place + 1,
                affiliate_id=a.id,
                name=a.name,
                channels=tuple(dict.fromkeys(_channel(c) for c in a.channels)),
                categories=tuple(categories.get(a.id, ())),
                quality_score=a.quality_score,
                flagged=a.quality_flagged,
                band=r.band,
            )
        )
    return DirectoryPage(listings, len(matching), q.program_categories(conn))
