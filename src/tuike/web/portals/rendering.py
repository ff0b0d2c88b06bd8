"""Templates of the portals: one Jinja environment, the shared context, error pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from tuike.web.portals import i18n
from tuike.web.portals.session import (
    ANON_COOKIE,
    LoginRequired,
    PageDenied,
    csrf_token,
    current_user,
)
from tuike.web.state import get_state

HERE = Path(__file__).parent


def N_(message: str) -> str:
    """Mark a message id for extraction; it is translated where it is shown."""
    return message


NAV: dict[str, list[tuple[str, str]]] = {
    # (path, message id) — the labels are translated when rendered.
    "affiliate": [
        ("/affiliate", N_("Dashboard")),
        ("/affiliate/programs", N_("Marketplace")),
        ("/affiliate/links", N_("Links")),
        ("/affiliate/reports", N_("Reports")),
        ("/affiliate/news", N_("News")),
        ("/affiliate/postbacks", N_("Postbacks")),
        ("/affiliate/profile", N_("Profile")),
        ("/account/keys", N_("API keys")),
    ],
    "merchant": [
        ("/merchant", N_("Dashboard")),
        ("/merchant/programs", N_("Programs")),
        ("/merchant/affiliates", N_("Affiliates")),
        ("/merchant/conversions", N_("Conversions")),
        ("/merchant/review", N_("Review")),
        ("/merchant/team", N_("Team")),
        ("/account/keys", N_("API keys")),
    ],
    "operator": [
        ("/operator", N_("System")),
        ("/operator/merchants", N_("Merchants")),
        ("/operator/affiliates", N_("Affiliates")),
        ("/operator/programs", N_("Programs")),
        ("/operator/review", N_("Review")),
        ("/operator/abuse", N_("Abuse reports")),
        ("/operator/audit", N_("Audit log")),
        ("/operator/outbox", N_("Outbox")),
        ("/operator/settings", N_("Settings")),
        ("/account/keys", N_("API keys")),
    ],
}


def locale_of(request: Request) -> str:
    """Return the locale a request is answered in."""
    if not hasattr(request.state, "locale"):
        user = current_user(request)
        request.state.locale = i18n.negotiate(
            request.cookies.get(i18n.LANG_COOKIE),
            request.headers.get("accept-language"),
            user.locale if user else "",
        )
    return request.state.locale


def gettext_for(request: Request) -> Any:
    """Return the gettext function of a request's locale."""
    return i18n.translations(locale_of(request)).gettext


def _context(request: Request) -> dict[str, Any]:
    locale = locale_of(request)
    user = current_user(request)
    tz = "UTC"
    if user is not None:
        tz = get_state(request).settings.default_timezone
    tr = i18n.translations(locale)
    platform = get_state(request).platform.get()
    return {
        "platform": platform,
        # The default name keeps its Chinese half, as before the setting existed.
        "brand": "tuike 推客" if platform.platform_name == "tuike" else platform.platform_name,
        "_": tr.gettext,
        "ngettext": tr.ngettext,
        "locale": locale,
        "locales": i18n.LOCALE_NAMES,
        "fmt": i18n.Formatter(locale, tz),
        "user": user,
        "nav": NAV.get(user.role, []) if user else [],
        "csrf": csrf_token(request),
        "path": request.url.path,
        "tojson": lambda v: Markup(json.dumps(v, ensure_ascii=False)),  # noqa: S704 - JSON for <script>
    }


templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[_context])
templates.env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """Render a page from the context its view built."""
    response = templates.TemplateResponse(request, template, context, status_code=status)
    new_anon = getattr(request.state, "new_anon", None)
    if new_anon:
        response.set_cookie(
            ANON_COOKIE,
            new_anon,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
    response.headers.setdefault("Cache-Control", "no-store")
    return response


ERRORS = {
    400: N_("The request was not understood."),
    401: N_("Please sign in."),
    403: N_("You are not allowed to see this page."),
    404: N_("This page does not exist, or is not yours to see."),
    409: N_("This cannot be done in the current state."),
    "csrf": N_("The form expired. Reload the page and try again."),
    "pending": N_("Your merchant account awaits the operator's approval."),
    "read_only": N_("Your role on this team can only read."),
}


def error_page(request: Request, status: int, message: str = "") -> Response:
    """Render an error page (used for every non-API path)."""
    _ = gettext_for(request)
    text = ERRORS.get(message) or ERRORS.get(status) or ERRORS[400]
    # Field errors and conflicts say what to fix; other statuses need no technical detail.
    detail = message if status in (400, 409) and message not in ERRORS else ""
    return render(
        request, "error.html", {"status": status, "text": _(text), "detail": detail}, status
    )


def install(app: FastAPI) -> None:
    """Serve the vendored assets and answer portal errors as HTML pages."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.render_error = error_page

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        context = {"next": target, "error": "", "email": "", "next_q": quote(target)}
        return render(request, "login.html", context, 401)

    @app.exception_handler(PageDenied)
    async def _denied(request: Request, exc: PageDenied) -> Response:
        return error_page(request, exc.status, exc.message)
