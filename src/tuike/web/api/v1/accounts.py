"""Accounts over the API: public sign-up and password reset, a merchant's team, and the
operator's approvals and bans. The same services as the portals do the work."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from tuike.domain.access import AFFILIATE, MERCHANT, OPERATOR, Principal
from tuike.domain.errors import Forbidden, InvalidField, NotFound
from tuike.services import accounts, auth, identity, keys, users
from tuike.services.users import User
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import IdPath, PrincipalDep, StateDep
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import ChannelIn, Strict
from tuike.web.errors import RateLimited
from tuike.web.state import AppState

# Public routes carry no key, so no Idempotency-Key either: a repeated sign-up answers
# 409 (the address has an account), a repeated reset 400 (the link was used).
public = APIRouter(tags=["accounts"])
router = APIRouter(tags=["accounts"], route_class=IdempotentRoute)


class AffiliateSignUpIn(Strict):
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    password: str = Field(max_length=200, description="At least 10 characters")
    timezone: str | None = Field(None, description="IANA zone; default TUIKE_DEFAULT_TIMEZONE")
    locale: str | None = Field(None, description="en | zh_CN: the language of the portal")
    channels: list[ChannelIn] = Field(
        [], max_length=20, description="At least one channel the affiliate promotes on"
    )


class MerchantSignUpIn(Strict):
    company: str = Field(max_length=200)
    name: str = Field(max_length=200, description="The owner's name")
    email: str = Field(max_length=254)
    password: str = Field(max_length=200, description="At least 10 characters")
    timezone: str | None = Field(None, description="IANA zone; default TUIKE_DEFAULT_TIMEZONE")
    locale: str | None = Field(None, description="en | zh_CN: the language of the portal")


class SignUpOut(BaseModel):
    user_id: int
    role: str
    owner_id: int
    status: str = Field(description="active (affiliate) | pending (merchant, until approved)")
    key: str = Field(
        description="An API key of the new user, shown once; a pending merchant's answers "
        "401 until the operator approves the merchant"
    )


class ForgotPasswordIn(Strict):
    email: str = Field(max_length=254)


class ResetPasswordIn(Strict):
    token: str = Field(max_length=100, description="The last part of the mailed link")
    password: str = Field(max_length=200, description="At least 10 characters")


class AcceptedOut(BaseModel):
    message: str


class MemberIn(Strict):
    email: str = Field(max_length=254)
    name: str = Field("", max_length=200)
    member_role: str = Field("analyst", description="owner | manager | analyst")


class MemberPatch(Strict):
    member_role: str | None = Field(None, description="owner | manager | analyst")
    status: str | None = Field(None, description="active | disabled")


class MemberOut(BaseModel):
    id: int
    email: str
    name: str
    member_role: str
    status: str

    @classmethod
    def of(cls, u: User) -> MemberOut:
        return cls(id=u.id, email=u.email, name=u.name, member_role=u.member_role, status=u.status)


class AccountStatusIn(Strict):
    status: str = Field(description="active (approve or reinstate) | banned")
    reason: str = Field("", max_length=500, description="Required to ban; audit-logged")


class AccountStatusOut(BaseModel):
    kind: str = Field(description="merchant | affiliate")
    id: int
    status: str


# --- public: sign-up and password reset ----------------------------------------------


def throttle(state: AppState, request: Request, action: str) -> None:
    """Refuse a client address past its allowance of public account requests (429)."""
    settings = state.settings
    window = timedelta(minutes=settings.login_window_minutes)
    ip = request.client.host if request.client else ""
    with state.db.write() as conn:
        allowed = auth.take_attempt(
            conn, action, ip, limit=settings.login_max_failures_per_ip, window=window
        )
    if not allowed:
        raise RateLimited(int(window.total_seconds()))


def _refuse_if_closed(state: AppState, kind: str) -> None:
    # Checked before anything is written (the rate limiter's row included); the service
    # checks again in its own transaction, which decides.
    if not getattr(state.platform.get(), f"{kind}_signup_open"):
        raise accounts.SignUpClosed(kind)


@public.post("/signup/affiliate", status_code=201, response_model=SignUpOut)
def sign_up_affiliate(body: AffiliateSignUpIn, request: Request, state: StateDep) -> SignUpOut:
    """Create an affiliate account with its channels, and a first API key for it."""
    _refuse_if_closed(state, AFFILIATE)
    throttle(state, request, "api:signup")
    with state.db.write() as conn:
        user = accounts.sign_up_affiliate(
            conn,
            name=body.name,
            email=body.email,
            password=body.password,
            timezone=body.timezone or state.settings.default_timezone,
            channels=[c.model_dump() for c in body.channels],
            locale=body.locale or "",
            seen=_seen(state, request),
        )
        raw = _first_key(conn, user)
    return SignUpOut(
        user_id=user.id, role=user.role, owner_id=user.owner_id or 0, status="active", key=raw
    )


@public.post("/signup/merchant", status_code=201, response_model=SignUpOut)
def sign_up_merchant(body: MerchantSignUpIn, request: Request, state: StateDep) -> SignUpOut:
    """Create a merchant awaiting the operator's approval, its owner, and the owner's key."""
    _refuse_if_closed(state, MERCHANT)
    throttle(state, request, "api:signup")
    with state.db.write() as conn:
        user = accounts.sign_up_merchant(
            conn,
            company=body.company,
            name=body.name,
            email=body.email,
            password=body.password,
            timezone=body.timezone or state.settings.default_timezone,
            locale=body.locale or "",
            seen=_seen(state, request),
        )
        raw = _first_key(conn, user)
    return SignUpOut(
        user_id=user.id, role=user.role, owner_id=user.owner_id or 0, status="pending", key=raw
    )


def _seen(state: AppState, request: Request) -> identity.Seen:
    # The address and client the sign-up came from become the account's identity marks.
    return identity.Seen(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        salt=state.settings.privacy_salt,
    )


def _first_key(conn: Connection, user: User) -> str:
    # The API's counterpart of the portal signing the new user in.
    return keys.create_key(
        conn, role=user.role, owner_id=user.owner_id, name="sign-up", user_id=user.id
    )


@public.post("/password/forgot", status_code=202, response_model=AcceptedOut)
def forgot_password(body: ForgotPasswordIn, request: Request, state: StateDep) -> AcceptedOut:
    """Mail a reset link if the address has an account; the answer is the same either way."""
    throttle(state, request, "api:password")
    with state.db.write() as conn:
        auth.request_password_reset(conn, body.email, f"{state.settings.public_url}/password/reset")
    return AcceptedOut(message="if the address has an account, a reset link is on its way")


@public.post("/password/reset", status_code=204, response_class=Response)
def reset_password(body: ResetPasswordIn, request: Request, state: StateDep) -> Response:
    """Set a new password with the token of a mailed link (it works once, for two hours)."""
    throttle(state, request, "api:password")
    with state.db.write() as conn:
        auth.reset_password(conn, body.token, body.password)
    return Response(status_code=204)


# --- a merchant's team ---------------------------------------------------------------


def _team_of(who: Principal, merchant_id: int | None) -> int:
    who.require(MERCHANT, OPERATOR)
    if who.role == OPERATOR:
        if merchant_id is None:
            raise InvalidField("merchant_id", "is required with an operator key")
        return merchant_id
    if merchant_id is not None and merchant_id != who.owner_id:
        raise NotFound("merchant")
    assert who.owner_id is not None
    return who.owner_id


def _team_owner(conn: Connection, who: Principal) -> User:
    """Return the owner the calling key acts for: only owners change a team (as the portal)."""
    who.require(MERCHANT)
    user = users.get_user(conn, who.user_id) if who.user_id is not None else None
    if user is None or user.member_role != "owner":
        raise Forbidden("only a key made by one of the merchant's owners manages its team")
    return user


@router.get("/team", response_model=list[MemberOut])
def list_team(
    who: PrincipalDep,
    state: StateDep,
    merchant_id: int | None = Query(None, ge=1, description="Required for operator keys."),
) -> list[MemberOut]:
    """List a merchant's users and their roles (its keys; the operator names the merchant)."""
    owner = _team_of(who, merchant_id)
    with state.db.read() as conn:
        if repo.get_merchant(conn, owner) is None:
            raise NotFound("merchant")
        return [MemberOut.of(u) for u in users.users_of(conn, "merchant", owner)]


@router.post("/team", status_code=201, response_model=MemberOut)
def invite_member(body: MemberIn, who: PrincipalDep, state: StateDep) -> MemberOut:
    """Add a user to the team; they set their password from the mailed link (owners)."""
    with state.db.write() as conn:
        actor = _team_owner(conn, who)
        member = accounts.add_member(
            conn,
            merchant_id=actor.owner_id or 0,
            email=body.email,
            name=body.name,
            member_role=body.member_role,
            actor=actor,
            reset_url=f"{state.settings.public_url}/password/reset",
        )
    return MemberOut.of(member)


@router.patch("/team/{user_id}", response_model=MemberOut)
def update_member(
    user_id: IdPath, body: MemberPatch, who: PrincipalDep, state: StateDep
) -> MemberOut:
    """Change a member's role, or disable them (owners; not themselves)."""
    with state.db.write() as conn:
        actor = _team_owner(conn, who)
        target = users.get_user(conn, user_id)
        if target is None or target.role != "merchant" or target.owner_id != actor.owner_id:
            raise NotFound("user")
        accounts.set_member_role(
            conn,
            actor=actor,
            user_id=user_id,
            member_role=body.member_role or target.member_role,
            status=body.status or target.status,
        )
        updated = users.get_user(conn, user_id)
    assert updated is not None
    return MemberOut.of(updated)


# --- the operator's approvals and bans -----------------------------------------------


def _set_status(
    state: AppState, who: Principal, kind: str, owner_id: int, body: AccountStatusIn
) -> AccountStatusOut:
    who.require(OPERATOR)
    with state.db.write() as conn:
        accounts.set_account_status(
            conn, kind, owner_id, body.status, actor=who.ref, reason=body.reason
        )
    return AccountStatusOut(kind=kind, id=owner_id, status=body.status)


@router.patch("/merchants/{merchant_id}/status", response_model=AccountStatusOut)
def set_merchant_status(
    merchant_id: IdPath, body: AccountStatusIn, who: PrincipalDep, state: StateDep
) -> AccountStatusOut:
    """Approve, ban (with a reason) or reinstate a merchant; audit-logged (operator)."""
    return _set_status(state, who, MERCHANT, merchant_id, body)


@router.patch("/affiliates/{affiliate_id}/status", response_model=AccountStatusOut)
def set_affiliate_status(
    affiliate_id: IdPath, body: AccountStatusIn, who: PrincipalDep, state: StateDep
) -> AccountStatusOut:
    """Ban (with a reason) or reinstate an affiliate; audit-logged (operator)."""
    return _set_status(state, who, AFFILIATE, affiliate_id, body)
