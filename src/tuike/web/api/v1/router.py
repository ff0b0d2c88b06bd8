"""The /api/v1 router."""

from __future__ import annotations

from fastapi import APIRouter

from tuike.web.api.v1 import (
    abuse,
    accounts,
    catalog,
    conversions,
    directory,
    keys,
    ledger,
    platform,
    postbacks,
    promotion,
    reports,
    review,
)

router = APIRouter(prefix="/api/v1")
router.include_router(accounts.public)
router.include_router(accounts.router)
router.include_router(keys.router)
router.include_router(directory.router)  # before catalog: /affiliates/{affiliate_id}
router.include_router(catalog.router)
router.include_router(promotion.router)
router.include_router(conversions.router)
router.include_router(reports.router)
router.include_router(ledger.router)
router.include_router(postbacks.router)
router.include_router(platform.router)
router.include_router(review.router)
router.include_router(abuse.public)
router.include_router(abuse.router)
