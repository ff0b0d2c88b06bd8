"""The affiliate directory: the network's affiliates ranked for merchants looking for some.

Its router comes before the catalog's, whose ``/affiliates/{affiliate_id}`` would otherwise
take ``directory`` for an id.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from tuike.domain.access import MERCHANT, OPERATOR
from tuike.services import directory as svc
from tuike.web.api.v1.deps import PrincipalDep, StateDep
from tuike.web.api.v1.schemas import DirectoryEntryOut

router = APIRouter()


@router.get("/affiliates/directory", response_model=list[DirectoryEntryOut], tags=["affiliates"])
def directory(
    who: PrincipalDep,
    state: StateDep,
    category: str = Query("", description="Only affiliates approved in a program of it"),
    channel: str = Query("", description="Only affiliates with a channel of this kind"),
    limit: int = Query(50, ge=1, le=svc.MAX_LIMIT),
    offset: int = Query(0, ge=0),
) -> list[DirectoryEntryOut]:
    """List the network's active affiliates, best first by quality-adjusted EPC (merchant,
    operator); EPC is given as a band of the network, never as a figure."""
    who.require(MERCHANT, OPERATOR)
    query = svc.DirectoryQuery(category=category, channel=channel, limit=limit, offset=offset)
    with state.db.read() as conn:
        page = svc.find_affiliates(conn, query)
    return [DirectoryEntryOut.of(listing) for listing in page.listings]
