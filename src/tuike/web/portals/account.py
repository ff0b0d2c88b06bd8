"""Pages anyone reaches: sign-in, sign-up, password reset, language; and a user's API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tuike.domain.catalog import CHANNEL_KINDS
from tuike.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from tuike.services import accounts, audit, auth, identity, keys, users
from tuike.web.portals import i18n
from tuike.web.portals.rendering import gettext_for, locale_of, render
from tuike.web.portals.session import (
    AnyUser,
    CsrfChecked,
    PageDenied,
    current_user,
    end_session,
    start_session,
)
from tuike.web.state import get_state

router = APIRouter(include_in_schema=False)
HOME = {"affiliate": "/affiliate", "merchant": "/merchant", "operator": "/operator"}
KEY_ROLE = {"affiliate": "affiliate", "merchant": "merchant", "operator": "operator"}


def safe_next(target: str | None, default: str = "/") -> str:
    """Return a same-site path to go to after a form, never another site (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


def see_other(path: str) -> RedirectResponse:
    """Redirect after a successful POST (303, so a reload does not post again)."""
    return RedirectResponse(path, status_code=303)


def seen_of(request: Request) -> identity.Seen:
    """Return where a request came from, for the identity marks of who sent it."""
    return identity.Seen(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        salt=get_state(request).settings.privacy_salt,
    )


def error_text(request: Request, exc: Exception) -> str:
    _ = gettext_for(request)
    if isinstance(exc, InvalidField):
        return f"{_(exc.field)}: {exc.message}"
    if isinstance(exc, (Conflict, Forbidden, NotFound)):
        return exc.message
    return _("Something went wrong.")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> Response:
    """Show the sign-in form."""
    user = current_user(request)
    if user is not None:
        return see_other(safe_next(next, HOME[user.role]))
    return render(request, "login.html", {"next": safe_next(next, ""), "error": "", "email": ""})


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
) -> Response:
    """Check the password (rate-limited) and open a session."""
    state = get_state(request)
    settings = state.settings
    limits = auth.LoginLimits(
        window=timedelta(minutes=settings.login_window_minutes),
        per_email=settings.login_max_failures,
        per_ip=settings.login_max_failures_per_ip,
    )
    ip = request.client.host if request.client else ""
    with state.db.write() as conn:
        result = auth.login(conn, email, password, ip=ip, limits=limits, seen=seen_of(request))
        status = (
            accounts.account_status(conn, result.user.role, result.user.owner_id)
            if result.user
            else ""
        )
    _ = gettext_for(request)
    if result.user is None or status == "banned":
        if result.refused == "throttled":
            message, code = _("Too many failed attempts. Wait a few minutes and try again."), 429
        else:
            message, code = _("Wrong email address or password."), 400
        context = {"next": safe_next(next, ""), "error": message, "email": email[:254]}
        return render(request, "login.html", context, code)
    response = see_other(safe_next(next, HOME[result.user.role]))
    start_session(request, response, result.user)
    if result.user.locale:
        response.set_cookie(
            i18n.LANG_COOKIE, result.user.locale, max_age=365 * 86400, samesite="lax"
        )
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    """Close the session."""
    response = see_other("/")
    end_session(request, response)
    return response


@router.post("/lang", dependencies=[CsrfChecked])
def switch_language(request: Request, locale: str = Form(...), next: str = Form("/")) -> Response:
    """Switch the portal language (remembered in a cookie and on the user)."""
    if locale not in i18n.LOCALES:
        locale = "en"
    response = see_other(safe_next(next))
    response.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax")
    user = current_user(request)
    if user is not None:
        with get_state(request).db.write() as conn:
            users.set_locale(conn, user.id, locale)
    return response


def _signup_context(request: Request, kind: str, form: dict[str, Any], error: str = "") -> dict:
    settings = get_state(request).platform.get()
    return {
        "kind": kind,
        "closed": not getattr(settings, f"{kind}_signup_open"),
        "form": form,
        "error": error,
        "channel_kinds": CHANNEL_KINDS,
        "timezone": form.get("timezone") or get_state(request).settings.default_timezone,
    }


def _signup_page(request: Request, kind: str) -> Response:
    context = _signup_context(
        request, kind, {"next": safe_next(request.query_params.get("next"), "")}
    )
    return render(request, "signup.html", context, 403 if context["closed"] else 200)


def _closed(request: Request, kind: str) -> Response:
    get_state(request).platform.invalidate()  # the page said open: read the switch again
    context = {**_signup_context(request, kind, {}), "closed": True}
    return render(request, "signup.html", context, 403)


@router.get("/signup/affiliate", response_class=HTMLResponse)
def affiliate_signup_page(request: Request) -> Response:
    """Show the affiliate sign-up form (or that the operator closed sign-up)."""
    return _signup_page(request, "affiliate")


@router.post("/signup/affiliate", dependencies=[CsrfChecked])
def affiliate_signup(
    request: Request,
    name: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    timezone: str = Form(""),
    channel_kind: str = Form(""),
    channel_name: str = Form(""),
    channel_url: str = Form(""),
    next: str = Form(""),
) -> Response:
    """Create an affiliate account with its first channel and sign it in."""
    state = get_state(request)
    form = {
        "name": name,
        "email": email,
        "timezone": timezone,
        "channel_kind": channel_kind,
        "channel_name": channel_name,
        "channel_url": channel_url,
        "next": safe_next(next, ""),
    }
    channels = (
        [{"kind": channel_kind, "name": channel_name, "url": channel_url}]
        if (channel_kind or channel_name or channel_url)
        else []
    )
    try:
        with state.db.write() as conn:
            user = accounts.sign_up_affiliate(
                conn,
                name=name,
                email=email,
                password=password,
                timezone=timezone or state.settings.default_timezone,
                channels=channels,
                locale=locale_of(request),
                seen=seen_of(request),
            )
    except accounts.SignUpClosed:
        return _closed(request, "affiliate")
    except (InvalidField, Conflict) as exc:
        context = _signup_context(request, "affiliate", form, error_text(request, exc))
        return render(request, "signup.html", context, 400)
    response = see_other(safe_next(next, "/affiliate/programs"))
    start_session(request, response, user)
    return response


@router.get("/signup/merchant", response_class=HTMLResponse)
def merchant_signup_page(request: Request) -> Response:
    """Show the merchant sign-up form (or that the operator closed sign-up)."""
    return _signup_page(request, "merchant")


@router.post("/signup/merchant", dependencies=[CsrfChecked])
def merchant_signup(
    request: Request,
    company: str = Form(""),
    name: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    timezone: str = Form(""),
) -> Response:
    """Create a merchant awaiting approval, and sign its owner in."""
    state = get_state(request)
    form = {"company": company, "name": name, "email": email, "timezone": timezone}
    try:
        with state.db.write() as conn:
            user = accounts.sign_up_merchant(
                conn,
                company=company,
                name=name,
                email=email,
                password=password,
                timezone=timezone or state.settings.default_timezone,
                locale=locale_of(request),
                seen=seen_of(request),
            )
    except accounts.SignUpClosed:
        return _closed(request, "merchant")
    except (InvalidField, Conflict) as exc:
        context = _signup_context(request, "merchant", form, error_text(request, exc))
        return render(request, "signup.html", context, 400)
    response = see_other("/merchant")
    start_session(request, response, user)
    return response


@router.get("/password/forgot", response_class=HTMLResponse)
def forgot_page(request: Request) -> Response:
    """Show the form that mails a reset link."""
    return render(request, "password_forgot.html", {"sent": False})


@router.post("/password/forgot", dependencies=[CsrfChecked])
def forgot(request: Request, email: str = Form("")) -> Response:
    """Mail a reset link (the answer is the same whether the address exists or not)."""
    state = get_state(request)
    with state.db.write() as conn:
        auth.request_password_reset(conn, email, f"{state.settings.public_url}/password/reset")
    return render(request, "password_forgot.html", {"sent": True})


@router.get("/password/reset/{token}", response_class=HTMLResponse)
def reset_page(request: Request, token: str) -> Response:
    """Show the new-password form of a reset link."""
    with get_state(request).db.read() as conn:
        valid = auth.reset_token_valid(conn, token)
    return render(
        request,
        "password_reset.html",
        {"token": token, "valid": valid, "error": ""},
        200 if valid else 400,
    )


@router.post("/password/reset/{token}", dependencies=[CsrfChecked])
def reset(request: Request, token: str, password: str = Form("")) -> Response:
    """Set the new password, then sign in."""
    try:
        with get_state(request).db.write() as conn:
            user = auth.reset_password(conn, token, password)
    except InvalidField as exc:
        context = {
            "token": token,
            "valid": exc.field != "token",
            "error": error_text(request, exc),
        }
        return render(request, "password_reset.html", context, 400)
    response = see_other(HOME[user.role])
    start_session(request, response, user)
    return response


def _keys_context(request: Request, user: users.User, new_key: str = "") -> dict[str, Any]:
    with get_state(request).db.read() as conn:
        mine = keys.list_keys(conn, user_id=user.id)
    return {"keys": mine, "new_key": new_key}


@router.get("/account/keys", response_class=HTMLResponse)
def keys_page(request: Request, user: AnyUser) -> Response:
    """List the API keys this user made."""
    return render(request, "keys.html", _keys_context(request, user))


@router.post("/account/keys", dependencies=[CsrfChecked])
def create_key(request: Request, user: AnyUser, name: str = Form("")) -> Response:
    """Create an API key for the user's account and show it once."""
    if not user.may_write():
        raise PageDenied(403, "read_only")
    with get_state(request).db.write() as conn:
        raw = keys.create_key(
            conn,
            role=KEY_ROLE[user.role],
            owner_id=user.owner_id,
            name=name[:200] or "portal",
            user_id=user.id,
        )
        audit.record(conn, user.ref, "api_key.create", f"{user.role}:{user.owner_id}", name=name)
    return render(request, "keys.html", _keys_context(request, user, raw), 201)


@router.post("/account/keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(request: Request, user: AnyUser, key_id: int) -> Response:
    """Revoke one of the user's keys."""
    with get_state(request).db.write() as conn:
        info = keys.get_key(conn, key_id)
        mine = {k.id for k in keys.list_keys(conn, user_id=user.id)}
        if info is None or key_id not in mine:
            raise NotFound("key")
        keys.revoke_key(conn, key_id)
        audit.record(conn, user.ref, "api_key.revoke", f"key:{key_id}")
    return see_other("/account/keys")
