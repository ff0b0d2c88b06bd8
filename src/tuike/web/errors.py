"""Map domain errors and validation failures to the public JSON error shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuike.domain.errors import Conflict, Forbidden, InvalidField, NotFound


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    """Return ``{"error": {"field", "message"}}`` with a status code."""
    body: dict[str, str] = {"message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


_MACHINE_PATHS = ("/api/", "/c/", "/pb", "/px.gif", "/healthz")


def _answer(request: Request, status: int, message: str, field: str | None = None) -> Response:
    """Answer JSON to machines, and an HTML page to people on portal paths."""
    render = getattr(request.app.state, "render_error", None)
    if render is not None and not request.url.path.startswith(_MACHINE_PATHS):
        return render(request, status, f"{field}: {message}" if field else message)
    return error_response(status, message, field)


class Unauthorized(Exception):
    """A missing, unknown or revoked API key (401)."""


class RateLimited(Exception):
    """Too many attempts from one client address (429, with Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many attempts")
        self.retry_after = retry_after


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON errors."""

    @app.exception_handler(InvalidField)
    async def _invalid(request: Request, exc: InvalidField) -> Response:
        return _answer(request, 400, exc.message, exc.field)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        return _answer(request, 409, exc.message)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return _answer(request, 404, exc.message)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return _answer(request, 403, exc.message)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, __: Unauthorized) -> JSONResponse:
        response = error_response(401, "missing, unknown or revoked API key")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RateLimited)
    async def _limited(_: Request, exc: RateLimited) -> JSONResponse:
        response = error_response(429, "too many attempts from this address; try again later")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(400, "the body is not valid JSON")
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return error_response(400, str(first.get("msg", "invalid")), ".".join(loc) or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _answer(request, exc.status_code, str(exc.detail))
