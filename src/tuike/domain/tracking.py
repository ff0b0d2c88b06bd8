"""The click decision: where a click lands, and what is recorded of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from tuike.domain.catalog import Link, Program
from tuike.domain.errors import InvalidField
from tuike.domain.landing import check_deep_link, host_allowed, with_query_param

SUB_MAX = 255
# A NUL cannot be stored in PostgreSQL text; no control character belongs in a sub id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A stand-in click id (a valid ULID) to find where the click id goes in a landing URL.
_MARK = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"


@dataclass(frozen=True, slots=True)
class ClickParams:
    """What the visitor's request carries."""

    subs: tuple[str, str, str, str, str]
    deep_link: str | None
    aff_click_id: str


@dataclass(frozen=True, slots=True)
class ClickRecord:
    """One click as stored."""

    id: str
    clicked_at: datetime
    program_id: int
    link_id: int
    affiliate_id: int
    creative_id: int | None
    subs: tuple[str, str, str, str, str]
    aff_click_id: str
    landing_url: str
    ip: str | None
    user_agent: str
    referer: str
    country: str
    device: str
    visitor: str
    is_unique: bool
    is_bot: bool
    # Traffic quality at click time (docs/fraud-rules.md): 0-100, rule codes, filtered.
    fraud_score: int = 0
    fraud_reasons: str = ""
    invalid: bool = False


def _echoed(query: dict[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        return ""
    if len(value) > SUB_MAX:
        raise InvalidField(name, f"must be at most {SUB_MAX} characters")
    if _CONTROL.search(value):
        raise InvalidField(name, "must not contain control characters")
    return value


NO_PARAMS = ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id="")


def parse_click_params(query: dict[str, str]) -> ClickParams:
    """Validate the optional query parameters of a click (raises InvalidField)."""
    if not query:
        return NO_PARAMS  # most clicks: a bare link
    subs = [_echoed(query, f"sub{i}") for i in range(1, 6)]
    aff_click_id = _echoed(query, "aff_click_id")
    return ClickParams(
        subs=(subs[0], subs[1], subs[2], subs[3], subs[4]),
        deep_link=query.get("url") or None,
        aff_click_id=aff_click_id,
    )


def merge_subs(
    link_subs: tuple[str, str, str, str, str], click_subs: tuple[str, str, str, str, str]
) -> tuple[str, str, str, str, str]:
    """Return the sub ids of a click: those in the request win over the link's own."""
    if click_subs == NO_PARAMS.subs:
        return link_subs
    merged = [c or s for s, c in zip(link_subs, click_subs, strict=True)]
    return (merged[0], merged[1], merged[2], merged[3], merged[4])


def landing_for(program: Program, link: Link, params: ClickParams) -> str:
    """Return the URL a click lands on, before the click id is added."""
    if params.deep_link:
        return check_deep_link(params.deep_link, program.allowed_domains, "url")
    if link.landing_url and host_allowed(
        urlsplit(link.landing_url).hostname or "", program.allowed_domains
    ):
        return link.landing_url
    # A domain the merchant has since removed: land on the program's page instead.
    return program.landing_url


def redirect_url(program: Program, landing: str, click_id: str) -> str:
    """Return the landing URL decorated with the click id."""
    return with_query_param(landing, program.click_param, click_id)


def redirect_template(program: Program, landing: str) -> tuple[str, str]:
    """Return (prefix, suffix) with ``prefix + click_id + suffix == redirect_url(...)``.

    Computed once per link so that a click only joins three strings. Valid for any click
    id that needs no quoting (ULIDs are letters and digits).
    """
    url = redirect_url(program, landing, _MARK)
    prefix, mark, suffix = url.partition(_MARK)
    if not mark or _MARK in suffix or _MARK in landing:
        raise ValueError(f"cannot template the landing URL {landing!r}")
    return prefix, suffix
