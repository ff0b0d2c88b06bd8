"""The tracker: GET/HEAD /c/{code}, GET /pb, GET /px.gif (spec sections 1, 3 and 4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from tuike.domain.errors import DomainError, InvalidField
from tuike.services import conversion_requests
from tuike.services import conversions as conv
from tuike.services.clock import utcnow
from tuike.services.keys import authenticate
from tuike.services.screening import ScreenSettings
from tuike.storage import catalog as repo
from tuike.web.errors import error_response
from tuike.web.state import AppState, get_state
from tuike.web.tracking.clicks import CLICK_COOKIE, handle_click, hit_from_scope

log = logging.getLogger("tuike.tracking")
router = APIRouter(tags=["tracking"])
StateDep = Annotated[AppState, Depends(get_state)]

NO_STORE = {"Cache-Control": "no-store"}
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@router.head("/c/{code}", response_class=Response, include_in_schema=False)
@router.get(
    "/c/{code}",
    response_class=Response,
    responses={302: {"description": "to the landing page"}, 404: {}, 410: {}, 400: {}, 503: {}},
)
async def click(code: str, request: Request, state: StateDep) -> Response:
    """Record a click and redirect to the landing page with the click id.

    Served by the fast path in ``TuikeApp`` before routing; this route documents it in
    the OpenAPI document and serves it when the app is mounted without that path.
    """
    hit = hit_from_scope(request.scope, state.settings.country_header)
    answer = await handle_click(code, hit, state)
    response = Response(answer.body, status_code=answer.status)
    response.raw_headers.extend(answer.headers)
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
        req = conversion_requests.parse_request(
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
            checks=ScreenSettings.of(state.settings),
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
            req = conversion_requests.parse_request(
                data,
                program,
                now=now,
                max_future=timedelta(seconds=state.settings.max_future_seconds),
                cookie_click_id=request.cookies.get(CLICK_COOKIE),
                # The buyer's browser itself: its address and user agent, not parameters.
                client=(
                    request.client.host if request.client else None,
                    request.headers.get("user-agent"),
                ),
            )
            conv.record_conversion(
                conn,
                program,
                req,
                source="pixel",
                privacy_salt=state.settings.privacy_salt,
                now=now,
                checks=ScreenSettings.of(state.settings),
            )
    except DomainError as exc:
        log.info("pixel conversion refused: %s", exc)
    except Exception:
        # The pixel always answers its GIF (spec section 4): errors are logged, not shown.
        log.exception("pixel conversion failed")
    return Response(GIF, media_type="image/gif", headers=NO_STORE)
