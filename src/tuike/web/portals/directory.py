"""The merchant's "Find affiliates" page: the network's affiliates, best first by
quality-adjusted EPC (services/directory.py), filtered by category and channel kind."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tuike.domain.catalog import CHANNEL_KINDS
from tuike.domain.ranking import BOTTOM_50, TOP_10, TOP_25, TOP_50, UNRATED
from tuike.services import directory, users
from tuike.storage import catalog as repo
from tuike.web.portals.rendering import N_, render
from tuike.web.portals.session import MerchantUser
from tuike.web.state import get_state

router = APIRouter(include_in_schema=False)
PAGE_ROWS = 50
BAND_TEXT = {
    # band: (message id, badge colour) — the label is translated when shown.
    TOP_10: (N_("top 10 %"), "bg-green-lt"),
    TOP_25: (N_("top 25 %"), "bg-teal-lt"),
    TOP_50: (N_("top 50 %"), "bg-azure-lt"),
    BOTTOM_50: (N_("bottom 50 %"), "bg-secondary-lt"),
    UNRATED: (N_("not rated yet"), "bg-secondary-lt"),
}


def discover_context(request: Request, user: users.User) -> dict[str, Any]:
    """Build the directory page: a page of ranked affiliates, the filters, invitation tabs."""
    params = request.query_params
    raw_offset = params.get("offset", "")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    category = params.get("category", "")
    channel = params.get("channel", "")
    # An unknown channel kind is ignored here rather than refused: it comes from a link.
    query = directory.DirectoryQuery(
        category=category,
        channel=channel if channel in CHANNEL_KINDS else "",
        limit=PAGE_ROWS,
        offset=offset,
    )
    with get_state(request).db.read() as conn:
        page = directory.find_affiliates(conn, query)
        programs = repo.list_programs(conn, merchant_id=user.owner_id)

    def page_link(at: int) -> str:
        return "?" + str(request.url.include_query_params(offset=at).query)

    return {
        "listings": page.listings,
        "total": page.total,
        "categories": page.categories,
        "channel_kinds": CHANNEL_KINDS,
        "category": query.category,
        "channel": query.channel,
        "bands": BAND_TEXT,
        # Invitation links are per program, not per affiliate: the tabs where they are made.
        "invite_programs": programs,
        "next_page": page_link(offset + PAGE_ROWS) if offset + PAGE_ROWS < page.total else "",
        "previous_page": page_link(max(0, offset - PAGE_ROWS)) if offset else "",
    }


@router.get("/merchant/affiliates/discover", response_class=HTMLResponse)
def discover(request: Request, user: MerchantUser) -> Response:
    """List the network's affiliates, ranked, to find new ones for one's programs."""
    return render(request, "merchant/discover.html", discover_context(request, user))
