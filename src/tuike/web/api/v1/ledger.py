"""Balances, ledger lines and merchant top-ups over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import insert, select, update

from tuike.domain import ledger as L
from tuike.domain.access import AFFILIATE, MERCHANT, OPERATOR, Principal
from tuike.domain.errors import Forbidden, InvalidField, NotFound
from tuike.domain.money import check_currency, format_minor, parse_amount, to_minor
from tuike.services import funding, fx, settlement
from tuike.services import ledger as svc
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.web.api.v1.deps import IdPath, PrincipalDep, StateDep
from tuike.web.api.v1.idempotency import IdempotentRoute
from tuike.web.api.v1.schemas import Strict

router = APIRouter(route_class=IdempotentRoute, tags=["ledger"])
MAX_LINES = 1000


def _owner(who: Principal, owner_type: str | None, owner_id: int | None) -> tuple[str, int]:
    """Whose books the caller asks for: its own, or anyone's for the operator."""
    if who.role == OPERATOR:
        if owner_type not in (MERCHANT, AFFILIATE, L.PLATFORM):
            raise InvalidField("owner_type", "must be merchant, affiliate or platform")
        if owner_type == L.PLATFORM:
            return owner_type, L.PLATFORM_ID
        if owner_id is None:
            raise InvalidField("owner_id", "is required with an operator key")
        return owner_type, owner_id
    who.require(MERCHANT, AFFILIATE)
    if (owner_type or who.role) != who.role or (owner_id or who.owner_id) != who.owner_id:
        raise NotFound("account")  # another owner's books do not exist for this caller
    assert who.owner_id is not None
    return who.role, who.owner_id


@router.get("/balances")
def balances(
    who: PrincipalDep,
    state: StateDep,
    owner_type: str | None = Query(None, description="merchant | affiliate | platform (operator)"),
    owner_id: int | None = Query(None, ge=1, description="Whose balances (operator)"),
) -> dict[str, Any]:
    """Balances per currency and account, as their owner reads them (decimal strings)."""
    kind, oid = _owner(who, owner_type, owner_id)
    with state.db.read() as conn:
        found = svc.balances(conn, kind, oid)
    return {
        "owner_type": kind,
        "owner_id": oid,
        "balances": {
            cur: {k: str(v) for k, v in accounts.items()} for cur, accounts in found.items()
        },
    }


@router.get("/ledger/lines")
def ledger_lines(
    who: PrincipalDep,
    state: StateDep,
    owner_type: str | None = Query(None),
    owner_id: int | None = Query(None, ge=1),
) -> list[dict[str, Any]]:
    """The owner's ledger lines, oldest first (the newest 1,000)."""
    kind, oid = _owner(who, owner_type, owner_id)
    with state.db.read() as conn:
        rows = list(svc.entries_of(conn, kind, oid))[-MAX_LINES:]
    return [
        {
            "at": r.created_at.isoformat(),
            "kind": r.kind,
            "account": r.account,
            "currency": r.currency,
            # As the owner reads it: a credit to an affiliate's available balance is +.
            "amount": format_minor(
                L.shown(L.Account(kind, oid, r.account, r.currency), r.amount_minor), r.currency
            ),
            "conversion_id": r.conversion_id,
        }
        for r in rows
    ]


class TopUpIn(Strict):
    amount: str = Field(description='Decimal string, e.g. "5000.00"')
    currency: str = "CNY"
    reference: str = Field(
        min_length=1,
        max_length=100,
        description="The bank transfer's reference; a repeat is a no-op",
    )


@router.post("/merchants/{merchant_id}/top-ups", status_code=201)
def top_up(
    merchant_id: IdPath, body: TopUpIn, who: PrincipalDep, state: StateDep
) -> dict[str, Any]:
    """Record money a merchant paid in (operator): its funds are credited."""
    if who.role != OPERATOR:
        raise Forbidden("only the operator records top-ups")
    currency = check_currency(body.currency)
    amount = parse_amount(body.amount, currency)
    if amount <= 0:
        raise InvalidField("amount", "must be more than zero")
    minor = to_minor(amount, currency)
    with state.db.write() as conn:
        if repo.get_merchant(conn, merchant_id) is None:
            raise NotFound("merchant")
        posted = svc.post(
            conn,
            L.Posting(
                key=f"topup:{merchant_id}:{body.reference}",
                kind="top_up",
                currency=currency,
                entries=(
                    (L.Account(L.PLATFORM, L.PLATFORM_ID, L.CASH, currency), minor),
                    (L.Account(MERCHANT, merchant_id, L.FUNDS, currency), -minor),
                ),
            ),
        )
        funding.check(conn, merchant_id, currency)
        funds = svc.balances(conn, MERCHANT, merchant_id)[currency]["funds"]
    state.links.invalidate()  # programs paused for want of funds may have resumed
    return {"posted": posted, "reference": body.reference, "funds": str(funds)}


class FundingIn(Strict):
    prepaid: bool | None = Field(
        None, description="Pause the merchant's programs when funds plus credit run out."
    )
    credit_limit: str | None = Field(None, description='Credit in `currency`, e.g. "1000.00"')
    currency: str = "CNY"


@router.patch("/merchants/{merchant_id}/funding")
def set_funding(
    merchant_id: IdPath, body: FundingIn, who: PrincipalDep, state: StateDep
) -> dict[str, Any]:
    """Set whether a merchant is prepaid and its credit limit in a currency (operator)."""
    if who.role != OPERATOR:
        raise Forbidden("only the operator sets a merchant's funding terms")
    currency = check_currency(body.currency)
    limit = (
        None
        if body.credit_limit is None
        else to_minor(parse_amount(body.credit_limit, currency, "credit_limit"), currency)
    )
    with state.db.write() as conn:
        if repo.get_merchant(conn, merchant_id) is None:
            raise NotFound("merchant")
        if body.prepaid is not None:
            conn.execute(
                update(t.merchants)
                .where(t.merchants.c.id == merchant_id)
                .values(prepaid=body.prepaid)
            )
        if limit is not None:
            table = t.merchant_credit_limits
            changed = conn.execute(
                update(table)
                .where(table.c.merchant_id == merchant_id, table.c.currency == currency)
                .values(limit_minor=limit)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(table).values(
                        merchant_id=merchant_id, currency=currency, limit_minor=limit
                    )
                )
        funding.check(conn, merchant_id, currency)
        prepaid = conn.execute(
            select(t.merchants.c.prepaid).where(t.merchants.c.id == merchant_id)
        ).scalar_one()
        left = funding.spendable(conn, merchant_id, currency)
    state.links.invalidate()
    return {
        "prepaid": bool(prepaid),
        "currency": currency,
        "spendable": format_minor(left, currency),
    }


@router.get("/notifications")
def notifications(who: PrincipalDep, state: StateDep) -> list[dict[str, Any]]:
    """Messages for the calling merchant (or, for the operator, the operator's), newest first."""
    who.require(OPERATOR, MERCHANT)
    rid = funding.OPERATOR_ID if who.role == OPERATOR else who.owner_id
    n = t.notifications
    with state.db.read() as conn:
        rows = conn.execute(
            select(n)
            .where(n.c.recipient_type == who.role, n.c.recipient_id == rid)
            .order_by(n.c.id.desc())
            .limit(100)
        ).all()
    return [{"at": r.created_at.isoformat(), "kind": r.kind, "message": r.message} for r in rows]


@router.get("/statements")
def statements(
    who: PrincipalDep,
    state: StateDep,
    owner_type: str | None = Query(None, description="merchant | affiliate (operator)"),
    owner_id: int | None = Query(None, ge=1),
) -> list[dict[str, Any]]:
    """Closed-period statements (affiliates) or invoices (merchants), newest first."""
    kind, oid = _owner(who, owner_type, owner_id)
    with state.db.read() as conn:
        rows = settlement.statements_of(conn, kind, oid)
    names = ("opening", *settlement.LINES, "closing")
    return [
        {
            "period": r.label,
            "starts_at": r.starts_at.isoformat(),
            "ends_at": r.ends_at.isoformat(),
            "currency": r.currency,
            **{n: format_minor(getattr(r, f"{n}_minor"), r.currency) for n in names},
        }
        for r in rows
    ]


class FxRateIn(Strict):
    base: str = Field(description="ISO 4217 code converted from, e.g. USD")
    quote: str = Field(description="ISO 4217 code converted to, e.g. CNY")
    rate: str = Field(description='1 base = rate quote, a decimal string, e.g. "7.1234"')
    valid_from: datetime | None = Field(None, description="From when (default: now)")


@router.post("/fx-rates", status_code=201)
def add_fx_rate(body: FxRateIn, who: PrincipalDep, state: StateDep) -> dict[str, Any]:
    """Record an exchange rate (operator); conversions use the one in force when they occur."""
    if who.role != OPERATOR:
        raise Forbidden("only the operator records exchange rates")
    rate = fx.parse_rate(body.rate)
    if body.valid_from is not None and body.valid_from.tzinfo is None:
        raise InvalidField("valid_from", "must carry a time zone offset")
    with state.db.write() as conn:
        fx.set_rate(conn, body.base, body.quote, rate, body.valid_from)
    return {"base": body.base, "quote": body.quote, "rate": str(rate)}


@router.get("/fx-rates")
def list_fx_rates(who: PrincipalDep, state: StateDep) -> list[dict[str, Any]]:
    """The recorded exchange rates, newest first (merchant or operator)."""
    who.require(OPERATOR, MERCHANT)
    r = t.fx_rates
    with state.db.read() as conn:
        rows = conn.execute(select(r).order_by(r.c.valid_from.desc()).limit(500)).all()
    return [
        {"base": x.base, "quote": x.quote, "rate": x.rate, "valid_from": x.valid_from.isoformat()}
        for x in rows
    ]
