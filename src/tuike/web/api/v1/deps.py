"""Dependencies of the API: the caller's principal and the tenancy helpers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection

from tuike.domain.access import AFFILIATE, MERCHANT, OPERATOR, Principal
from tuike.domain.catalog import Program
from tuike.domain.errors import NotFound
from tuike.services.keys import authenticate
from tuike.storage import catalog as repo
from tuike.storage.reports import Scope
from tuike.web.errors import Unauthorized
from tuike.web.state import AppState, get_state

_bearer = HTTPBearer(auto_error=False, description="An API key: tk_op_…, tk_mc_…, tk_af_…, tk_pg_…")


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the caller of a request, or answer 401."""
    if credentials is None:
        raise Unauthorized
    state = get_state(request)
    with state.db.read() as conn:
        principal = authenticate(conn, credentials.credentials)
    if principal is None:
        raise Unauthorized
    return principal


MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
StateDep = Annotated[AppState, Depends(get_state)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def visible_program(conn: Connection, principal: Principal, program_id: int) -> Program:
    """Return a program the caller may see (affiliates see every active program)."""
    program = repo.get_program(conn, program_id)
    if program is None:
        raise NotFound("program")
    if principal.role == OPERATOR:
        return program
    if principal.role == MERCHANT and principal.owner_id == program.merchant_id:
        return program
    if principal.role == AFFILIATE and program.active:
        return program
    if principal.role == "program" and principal.owner_id == program.id:
        return program
    raise NotFound("program")


def managed_program(conn: Connection, principal: Principal, program_id: int) -> Program:
    """Return a program the caller administers (its merchant or the operator)."""
    program = repo.get_program(conn, program_id)
    if program is None or not principal.may_manage_merchant(program.merchant_id):
        raise NotFound("program")
    return program


def report_scope(conn: Connection, principal: Principal) -> Scope:
    """Return what part of the traffic a caller may see in reports and lists."""
    if principal.role == OPERATOR:
        return Scope()
    if principal.role == MERCHANT:
        ids = tuple(p.id for p in repo.list_programs(conn, merchant_id=principal.owner_id))
        return Scope(program_ids=ids)
    if principal.role == AFFILIATE:
        return Scope(affiliate_id=principal.owner_id)
    return Scope(program_ids=(principal.owner_id or -1,))
