"""The click handler in plain ASGI terms: what it reads of a request, what it answers.

Clicks are the hot path: reading only the headers it needs and writing the answer's
bytes directly costs a fraction of building Starlette request and response objects.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope, Send

from tuike.domain.errors import InvalidField
from tuike.domain.ids import is_link_code
from tuike.domain.tracking import parse_click_params
from tuike.services.click_writer import Backpressure, WriterClosed
from tuike.services.clicks import MISS, Visit, build_click
from tuike.services.clock import utcnow
from tuike.web.state import AppState

log = logging.getLogger("tuike.tracking")

CLICK_COOKIE = "tk_click"
VISITOR_COOKIE = "tk_v"
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;color:#333}}
</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"""
_NO_STORE = (b"cache-control", b"no-store")
# What Starlette's RedirectResponse leaves unquoted in a Location header.
_LOCATION_SAFE = ":/%#?=@[]!$&'()*+,;"
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9_.\-~:/%#?=@\[\]!$&'()*+,;]")
# Headers with which browsers mark speculative requests (Chrome, Safari, Firefox).
_PURPOSE_HEADERS = frozenset((b"sec-purpose", b"purpose", b"x-purpose", b"x-moz"))


@dataclass(slots=True)
class Hit:
    """What the tracker reads of a click request."""

    method: str
    query: dict[str, str]
    user_agent: str = ""
    referer: str = ""
    country: str = ""
    visitor_cookie: str | None = None
    https: bool = False
    ip: str | None = None
    purpose: str = ""  # Sec-Purpose, Purpose, X-Purpose or X-Moz: a prefetch or preview


@dataclass(slots=True)
class Answer:
    """A complete HTTP answer."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


def hit_from_scope(scope: Scope, country_header: str) -> Hit:
    """Read a click request from its ASGI scope, touching only the headers needed."""
    wanted = country_header.lower().encode() if country_header else b"\0"
    user_agent = referer = country = purpose = ""
    visitor = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
        elif name == b"referer":
            referer = value.decode("latin-1")
        elif name == wanted:
            country = value.decode("latin-1")
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == VISITOR_COOKIE:
                    visitor = val
        elif name in _PURPOSE_HEADERS:
            purpose = value.decode("latin-1")
    raw_query = scope.get("query_string")
    query = (
        dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)) if raw_query else {}
    )
    client = scope.get("client")
    return Hit(
        method=scope["method"],
        query=query,
        user_agent=user_agent,
        referer=referer,
        country=country,
        visitor_cookie=visitor,
        https=scope.get("scheme") == "https",
        ip=client[0] if client else None,
        purpose=purpose,
    )


def page(status: int, title: str, text: str) -> Answer:
    """Return a small HTML page (no stack trace, nothing the visitor sent unescaped)."""
    body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
    return Answer(status, [(b"content-type", b"text/html; charset=utf-8"), _NO_STORE], body)


def redirect(url: str) -> Answer:
    """Return a 302 to a URL (quoted as Starlette quotes it)."""
    if _NEEDS_QUOTING.search(url):
        url = quote(url, safe=_LOCATION_SAFE)
    location = url.encode("latin-1")
    return Answer(302, [(b"location", location), _NO_STORE])


async def handle_click(code: str, hit: Hit, state: AppState) -> Answer:
    """Record a click and answer the redirect to the landing page with the click id.

    A HEAD request (a link checker, a chat app's preview) answers the same redirect and
    is recorded as a filtered click, without cookies. A filtered click does not replace
    the visitor's ``tk_click`` cookie: it attributes nothing, so the last valid click
    keeps its place.
    """
    if not is_link_code(code):
        return page(404, "Link not found", "This tracking link does not exist.")
    resolved = state.links.cached(code)
    if resolved is MISS:
        resolved = await run_in_threadpool(state.links.resolve, code)
    if resolved is None:
        return page(404, "Link not found", "This tracking link does not exist.")
    if not resolved.live:
        if resolved.program.fallback_url:
            return redirect(resolved.program.fallback_url)
        return page(410, "Offer ended", "This offer is no longer available.")
    settings = state.settings
    try:
        params = parse_click_params(hit.query)
        visit = Visit(
            ip=hit.ip,
            user_agent=hit.user_agent,
            referer=hit.referer,
            country=hit.country,
            visitor_cookie=hit.visitor_cookie,
            method=hit.method,
            purpose=hit.purpose,
        )
        record = build_click(
            resolved,
            params,
            visit,
            at=utcnow(),
            ip_storage=settings.ip_storage,
            privacy_salt=settings.privacy_salt,
            uniques=state.uniques,
            checks=state.checks,
        )
    except InvalidField as exc:
        return page(400, "Bad link", f"{exc.field}: {exc.message}")
    try:
        if settings.tracker_mode == "durable":
            await state.writer.record(record)
        else:
            state.writer.submit(record)
    except (Backpressure, WriterClosed) as exc:
        # Never acknowledge a click that is not (or may not be) kept.
        log.warning("click refused: %s", exc)
        busy = page(503, "Busy", "Please try again in a moment.")
        busy.headers.append((b"retry-after", b"1"))
        return busy
    answer = redirect(record.landing_url)
    if hit.method == "HEAD":
        return answer
    # The values are ULIDs and hex keys: nothing needs quoting.
    secure = "; Secure" if hit.https else ""
    if not record.invalid:
        max_age = resolved.program.cookie_days * 86400
        answer.headers.append(
            (
                b"set-cookie",
                f"{CLICK_COOKIE}={record.id}; Max-Age={max_age}; Path=/; HttpOnly; "
                f"SameSite=Lax{secure}".encode(),
            )
        )
    if hit.visitor_cookie is None:
        answer.headers.append(
            (
                b"set-cookie",
                f"{VISITOR_COOKIE}={record.visitor}; Max-Age={365 * 86400}; Path=/; HttpOnly; "
                f"SameSite=Lax{secure}".encode(),
            )
        )
    return answer


async def send_answer(send: Send, answer: Answer, *, head: bool = False) -> None:
    """Send an answer over ASGI (no body for HEAD)."""
    headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else answer.body})
