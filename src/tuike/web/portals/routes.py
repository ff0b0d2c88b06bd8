"""Portal pages: placeholders per role until the portals are built (views build a context)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

PORTALS: dict[str, dict[str, Any]] = {
    "merchant": {
        "title": "Merchant console",
        "coming": [
            "Programs, commission plans and allowed landing domains",
            "Affiliate applications to approve, groups and coupons",
            "Conversions to review, refunds, and reports by affiliate and sub id",
        ],
    },
    "affiliate": {
        "title": "Affiliate portal",
        "coming": [
            "Offers ranked by EPC, applications and deep-link builder",
            "Links, QR codes and banners for every channel",
            "Earnings, reports by sub id, postbacks and payouts",
        ],
    },
    "operator": {
        "title": "Operator console",
        "coming": [
            "Merchants, affiliates and API keys",
            "Traffic quality and fraud review",
            "Settlement and payouts",
        ],
    },
}


def home_context(request: Request) -> dict[str, Any]:
    """Build the context of the home page."""
    return {"portals": PORTALS, "api_docs": "/api/v1/docs", "openapi": "/api/v1/openapi.json"}


def portal_context(role: str) -> dict[str, Any]:
    """Build the context of a role's placeholder page."""
    return {"role": role, **PORTALS[role]}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Show what runs here and where to go."""
    return templates.TemplateResponse(request, "home.html", home_context(request))


@router.get("/healthz")
def health() -> dict[str, str]:
    """Answer that the process is up."""
    return {"status": "ok"}


def _portal(role: str) -> Any:
    def page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "portal.html", portal_context(role))

    page.__name__ = f"{role}_portal"
    page.__doc__ = f"Show the {role} portal."
    return page


for _role in PORTALS:
    router.add_api_route(f"/{_role}", _portal(_role), methods=["GET"], response_class=HTMLResponse)
