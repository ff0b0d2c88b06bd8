"""The portals' router: the home page, health, and the account, affiliate, merchant and
operator pages (views build a context; templates only render it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tuike.web.portals import (
    abuse,
    account,
    affiliate,
    directory,
    merchant,
    operator,
    postbacks,
    promotion,
    review,
)
from tuike.web.portals.rendering import N_, render
from tuike.web.state import get_state

router = APIRouter(include_in_schema=False)

PORTALS: dict[str, dict[str, str]] = {
    "affiliate": {
        "title": N_("Affiliate portal"),
        "pitch": N_("Find programs, build links and QR codes, follow your earnings."),
        "join": "/signup/affiliate",
    },
    "merchant": {
        "title": N_("Merchant console"),
        "pitch": N_("Run programs, approve affiliates and conversions, see your ROI."),
        "join": "/signup/merchant",
    },
    "operator": {
        "title": N_("Operator console"),
        "pitch": N_("Approve accounts, watch the system, read the audit log."),
        "join": "",
    },
}


def home_context(request: Request | None) -> dict[str, Any]:
    """Build the context of the home page (no sign-up button where sign-up is closed)."""
    portals = PORTALS
    if request is not None:
        settings = get_state(request).platform.get()
        closed = {
            role
            for role, is_open in (
                ("affiliate", settings.affiliate_signup_open),
                ("merchant", settings.merchant_signup_open),
            )
            if not is_open
        }
        if closed:
            portals = {
                role: {**portal, "join": "" if role in closed else portal["join"]}
                for role, portal in PORTALS.items()
            }
    return {"portals": portals, "api_docs": "/api/v1/docs", "openapi": "/api/v1/openapi.json"}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Show what runs here and where to go."""
    return render(request, "home.html", home_context(request))


@router.get("/healthz")
def health() -> dict[str, str]:
    """Answer that the process is up."""
    return {"status": "ok"}


for _module in (
    account,
    affiliate,
    postbacks,
    merchant,
    directory,
    operator,
    promotion,
    review,
    abuse,
):
    router.include_router(_module.router)
