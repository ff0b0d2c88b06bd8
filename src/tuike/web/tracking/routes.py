"""The tracker: GET/HEAD /c/{code}, GET /pb, GET /px.gif (spec sections 1, 3 and 4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from tuike.domain.errors import DomainError, InvalidField
from tuike.domain.ids import is_link_code
from tuike.domain.tracking import landing_for, parse_click_params
from tuike.services import conversions as conv
from tuike.services.click_writer import Backpressure, WriterClosed
from tuike.services.clicks import MISS, Visit, build_click
from tuike.services.clock import utcnow
from tuike.services.keys import authenticate
from tuike.storage import catalog as repo
from tuike.web.errors import error_response
from tuike.web.state import AppState, get_state

log = logging.getLogger("tuike.tracking")
router = APIRouter(tags=["tracking"])
StateDep = Annotated[AppState, Depends(get_state)]

CLICK_COOKIE = "tk_click"
VISITOR_COOKIE = "tk_v"
NO_STORE = {"Cache-Control": "no-store"}
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;color:#333}}
</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"""


def html_page(status: int, title: str, text: str) -> HTMLResponse:
    """Return a small HTML page (no stack trace, nothing the visitor sent unescaped)."""
    page = _PAGE.format(title=html.escape(title), text=html.escape(text))
    return HTMLResponse(page, status_code=status, headers=NO_STORE)


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.head("/c/{code}", response_class=Response, include_in_schema=False)
@router.get(
    "/c/{code}",
    response_class=Response,
    responses={302: {"description": "to the landing page"}, 404: {}, 410: {}, 400: {}},
)
async def click(code: str, request: Request, state: StateDep) -> Response:
    """Record a click and redirect to the landing page with the click id."""
    if not is_link_code(code):
        return html_page(404, "Link not found", "This tracking link does not exist.")
    resolved = state.links.cached(code)
    if resolved is MISS:
        resolved = await run_in_threadpool(state.links.resolve, code)
    if resolved is None:
        return html_page(404, "Link not found", "This tracking link does not exist.")
    if not resolved.live:
        if resolved.program.fallback_url:
            return RedirectResponse(resolved.program.fallback_url, 302, headers=NO_STORE)
        return html_page(410, "Offer ended", "This offer is no longer available.")
    try:
        params = parse_click_params(dict(request.query_params))
        if request.method == "HEAD":
            landing = landing_for(resolved.program, resolved.link, params)
            return RedirectResponse(landing, 302, headers=NO_STORE)
        settings = state.settings
        visit = Visit(
            ip=_client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
            referer=request.headers.get("referer", ""),
            country=request.headers.get(settings.country_header, "")
            if settings.country_header
            else "",
            visitor_cookie=request.cookies.get(VISITOR_COOKIE),
        )
        now = utcnow()
        record = build_click(
            resolved,
            params,
            visit,
            at=now,
            ip_storage=settings.ip_storage,
            privacy_salt=settings.privacy_salt,
            uniques=state.uniques,
        )
    except InvalidField as exc:
        return html_page(400, "Bad link", f"{exc.field}: {exc.message}")
    try:
        if settings.tracker_mode == "durable":
            await state.writer.record(record)
        else:
            state.writer.submit(record)
    except (Backpressure, WriterClosed) as exc:
        # Never acknowledge a click that is not (or may not be) kept.
        log.warning("click refused: %s", exc)
        page = html_page(503, "Busy", "Please try again in a moment.")
        page.headers["Retry-After"] = "1"
        return page
    response = RedirectResponse(record.landing_url, 302, headers=NO_STORE)
    # Cookies written by hand: http.cookies' machinery was a tenth of a click's time.
    # The values are ULIDs and hex keys, so nothing needs quoting.
    secure = "; Secure" if request.scope.get("scheme") == "https" else ""
    max_age = resolved.program.cookie_days * 86400
    raw = response.raw_headers
    raw.append(
        (
            b"set-cookie",
            f"{CLICK_COOKIE}={record.id}; Max-Age={max_age}; Path=/; HttpOnly; "
            f"SameSite=Lax{secure}".encode(),
        )
    )
    if VISITOR_COOKIE not in request.cookies:
        raw.append(
            (
                b"set-cookie",
                f"{VISITOR_COOKIE}={record.visitor}; Max-Age={365 * 86400}; Path=/; HttpOnly; "
                f"SameSite=Lax{secure}".encode(),
            )
        )
    return response


def signed_part(raw_query: str) -> str:
    """Return the query string a postback signature covers: all of it but ``sig``."""
    return "&".join(p for p in raw_query.split("&") if p and not p.startswith("sig="))


def sign_query(raw_query: str, secret: str) -> str:
    """Return the hex HMAC-SHA256 of a query string (without sig) under a secret."""
    return hmac.new(secret.encode(), signed_part(raw_query).encode(), hashlib.sha256).hexdigest()


@router.get("/pb", summary="Conversion postback (GET)")
def postback(request: Request, state: StateDep) -> JSONResponse:
    """Record a conversion from a GET postback (spec section 3)."""
    query = dict(request.query_params)
    with state.db.write() as conn:
        principal = authenticate(conn, query.get("key"))
        if principal is None or principal.role != "program" or principal.owner_id is None:
            return error_response(401, "missing, unknown or revoked program key", "key")
        program = repo.get_program(conn, principal.owner_id)
        if program is None:
            return error_response(401, "missing, unknown or revoked program key", "key")
        sig = query.get("sig")
        if program.require_signature or sig:
            secret = repo.program_secret(conn, program.id)
            raw = request.scope.get("query_string", b"").decode("latin-1")
            expected = sign_query(raw, secret).encode()
            if not sig or not hmac.compare_digest(sig.lower().encode(), expected):
                return error_response(401, "signature missing or wrong", "sig")
        data = {k: v for k, v in query.items() if k not in ("key", "sig")}
        now = utcnow()
        req = conv.parse_request(
            data,
            program,
            now=now,
            max_future=timedelta(seconds=state.settings.max_future_seconds),
        )
        result = conv.record_conversion(
            conn,
            program,
            req,
            source="postback",
            privacy_salt=state.settings.privacy_salt,
            now=now,
        )
    return JSONResponse(result.body, status_code=result.http_status)


@router.get("/px.gif", response_class=Response, summary="Conversion pixel")
def pixel(request: Request, state: StateDep) -> Response:
    """Record a conversion from the browser and always answer a 1x1 GIF (spec section 4)."""
    query = dict(request.query_params)
    try:
        with state.db.write() as conn:
            program = repo.get_program_by_public_id(conn, query.get("program", ""))
            if program is None:
                raise InvalidField("program", "unknown program")
            data = {k: v for k, v in query.items() if k not in ("program",)}
            now = utcnow()
            req = conv.parse_request(
                data,
                program,
                now=now,
                max_future=timedelta(seconds=state.settings.max_future_seconds),
                cookie_click_id=request.cookies.get(CLICK_COOKIE),
            )
            conv.record_conversion(
                conn,
                program,
                req,
                source="pixel",
                privacy_salt=state.settings.privacy_salt,
                now=now,
            )
    except DomainError as exc:
        log.info("pixel conversion refused: %s", exc)
    except Exception:
        # The pixel always answers its GIF (spec section 4): errors are logged, not shown.
        log.exception("pixel conversion failed")
    return Response(GIF, media_type="image/gif", headers=NO_STORE)
