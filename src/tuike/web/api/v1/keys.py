"""API keys over the API, and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import Connection

from tuike.domain.access import MERCHANT, OPERATOR, Principal
from tuike.domain.errors import NotFound
from tuike.services import audit
from tuike.services import keys as svc
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import IdPath, PrincipalDep, StateDep
from tuike.web.api.v1.schemas import KeyIn, KeyInfoOut, KeyOut, MeOut

# Not an IdempotentRoute: a replay would have to keep the new key in clear, and a key is
# shown once (only its hash is stored).
router = APIRouter(tags=["keys"])


@router.get("/me", response_model=MeOut)
def me(who: PrincipalDep) -> MeOut:
    """Return the role and owner of the calling key, and the user it acts for."""
    return MeOut(role=who.role, owner_id=who.owner_id, user_id=who.user_id)


@router.post("/keys", status_code=201, response_model=KeyOut)
def new_key(body: KeyIn, who: PrincipalDep, state: StateDep) -> KeyOut:
    """Create an API key: any (operator), or program keys of one's own programs (merchant)."""
    who.require(OPERATOR, MERCHANT)
    with state.db.write() as conn:
        if who.role == MERCHANT:
            program = repo.get_program(conn, body.owner_id or -1)
            if body.role != "program" or program is None or program.merchant_id != who.owner_id:
                raise NotFound("program")
        # Made through a user's key, the new key is that user's, as in /account/keys.
        raw = svc.create_key(
            conn, role=body.role, owner_id=body.owner_id, name=body.name, user_id=who.user_id
        )
    return KeyOut(key=raw, role=body.role, owner_id=body.owner_id)


def _visible(conn: Connection, who: Principal) -> list[svc.KeyInfo]:
    """The keys a caller may see and revoke: its user's (as /account/keys), all (operator)."""
    if who.role == OPERATOR:
        return svc.list_keys(conn)
    if who.user_id is not None:
        return svc.list_keys(conn, user_id=who.user_id)
    # A key of no user (made by the CLI or the operator) answers only for itself.
    own = svc.get_key(conn, who.key_id)
    return [own] if own is not None else []


@router.get("/keys", response_model=list[KeyInfoOut])
def list_keys(who: PrincipalDep, state: StateDep) -> list[KeyInfoOut]:
    """List the keys made by the calling key's user (every key for the operator), newest first."""
    with state.db.read() as conn:
        return [KeyInfoOut.of(k) for k in _visible(conn, who)]


@router.delete("/keys/{key_id}", status_code=204, response_class=Response)
def revoke_key(key_id: IdPath, who: PrincipalDep, state: StateDep) -> Response:
    """Revoke one of those keys (it answers 401 from then on); revoking twice is a no-op."""
    with state.db.write() as conn:
        if key_id not in {k.id for k in _visible(conn, who)}:
            raise NotFound("key")
        if svc.revoke_key(conn, key_id):
            audit.record(conn, who.ref, "api_key.revoke", f"key:{key_id}")
    return Response(status_code=204)
