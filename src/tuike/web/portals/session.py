"""Who is signed in to the portals, and the CSRF token every form carries.

The session cookie holds a random token (the database keeps only its hash); it is
HttpOnly, SameSite=Lax, and Secure when the page was served over https. Every POST
must carry the CSRF token of its session (or, before sign-in, of the anonymous cookie)
in a form field ``csrf`` or an ``X-CSRF-Token`` header (HTMX sends the header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response

from tuike.services import accounts, auth
from tuike.services.users import User
from tuike.web.state import get_state

SESSION_COOKIE = "tk_session"
ANON_COOKIE = "tk_anon"


class LoginRequired(Exception):
    """The page needs a signed-in user (answers 401 with the login form)."""


class PageDenied(Exception):
    """The page exists but answers an HTML error (403 for a wrong role, 404 for a foreign id)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _anon_token(request: Request) -> str:
    token = request.cookies.get(ANON_COOKIE) or getattr(request.state, "new_anon", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_anon = token  # set on the response by render()
    return token


def csrf_token(request: Request) -> str:
    """Return the CSRF token forms of this page must send back."""
    basis = request.cookies.get(SESSION_COOKIE) if current_user(request) else None
    basis = f"s:{basis}" if basis else f"a:{_anon_token(request)}"
    secret = get_state(request).settings.secret_key.encode()
    return hmac.new(secret, basis.encode(), hashlib.sha256).hexdigest()


async def check_csrf(request: Request) -> None:
    """Refuse a POST whose CSRF token is missing or is not this browser's."""
    sent = request.headers.get("x-csrf-token")
    if not sent:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else ""
    if not (request.cookies.get(SESSION_COOKIE) or request.cookies.get(ANON_COOKIE)):
        raise PageDenied(403, "csrf")
    if not hmac.compare_digest(sent or "", csrf_token(request)):
        raise PageDenied(403, "csrf")


def current_user(request: Request) -> User | None:
    """Return the signed-in user of a request (looked up once per request)."""
    if hasattr(request.state, "user"):
        return request.state.user
    raw = request.cookies.get(SESSION_COOKIE)
    user = None
    if raw:
        with get_state(request).db.read() as conn:
            user = auth.session_user(conn, raw)
            if user is not None and accounts.account_status(conn, user.role, user.owner_id) == (
                "banned"
            ):
                user = None
            request.state.account_status = (
                accounts.account_status(conn, user.role, user.owner_id) if user else ""
            )
    request.state.user = user
    return user


def start_session(request: Request, response: Response, user: User) -> None:
    """Sign a user in: open a session and set its cookie."""
    state = get_state(request)
    ttl = timedelta(hours=state.settings.session_hours)
    with state.db.write() as conn:
        raw = auth.create_session(conn, user, ttl)
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def end_session(request: Request, response: Response) -> None:
    """Sign out: close the session in the database and drop its cookie."""
    with get_state(request).db.write() as conn:
        auth.end_session(conn, request.cookies.get(SESSION_COOKIE))
    response.delete_cookie(SESSION_COOKIE, path="/")


def _require(role: str, write: bool = False) -> object:
    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise LoginRequired
        if user.role != role:
            raise PageDenied(403, "role")
        if getattr(request.state, "account_status", "active") != "active":
            raise PageDenied(403, "pending")
        if write and not user.may_write():
            raise PageDenied(403, "read_only")
        return user

    dependency.__name__ = f"require_{role}"
    return Depends(dependency)


CsrfChecked = Depends(check_csrf)
AffiliateUser = Annotated[User, _require("affiliate")]
MerchantUser = Annotated[User, _require("merchant")]
MerchantWriter = Annotated[User, _require("merchant", write=True)]
OperatorUser = Annotated[User, _require("operator")]


def signed_in(request: Request) -> User:
    """Return the signed-in user of any role, or raise LoginRequired."""
    user = current_user(request)
    if user is None:
        raise LoginRequired
    return user


AnyUser = Annotated[User, Depends(signed_in)]
