"""API keys over the API, and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter

from tuike.domain.access import MERCHANT, OPERATOR
from tuike.domain.errors import NotFound
from tuike.services.keys import create_key
from tuike.storage import catalog as repo
from tuike.web.api.v1.deps import PrincipalDep, StateDep
from tuike.web.api.v1.schemas import KeyIn, KeyOut, MeOut

# Not an IdempotentRoute: a replay would have to keep the new key in clear, and a key is
# shown once (only its hash is stored).
router = APIRouter(tags=["keys"])


@router.get("/me", response_model=MeOut)
def me(who: PrincipalDep) -> MeOut:
    """Return the role and owner of the calling key."""
    return MeOut(role=who.role, owner_id=who.owner_id)


@router.post("/keys", status_code=201, response_model=KeyOut)
def new_key(body: KeyIn, who: PrincipalDep, state: StateDep) -> KeyOut:
    """Create an API key: any (operator), or program keys of one's own programs (merchant)."""
    who.require(OPERATOR, MERCHANT)
    with state.db.write() as conn:
        if who.role == MERCHANT:
            program = repo.get_program(conn, body.owner_id or -1)
            if body.role != "program" or program is None or program.merchant_id != who.owner_id:
                raise NotFound("program")
        raw = create_key(conn, role=body.role, owner_id=body.owner_id, name=body.name)
    return KeyOut(key=raw, role=body.role, owner_id=body.owner_id)
