"""The operator's run-time platform settings over the API."""

from __future__ import annotations

from fastapi import APIRouter

from tuike.domain.access import OPERATOR
from tuike.services import platform
from tuike.web.api.v1.deps import PrincipalDep, StateDep
from tuike.web.api.v1.schemas import PlatformSettingsOut, PlatformSettingsPatch

router = APIRouter(tags=["platform"])


@router.get("/platform/settings", response_model=PlatformSettingsOut)
def get_settings(who: PrincipalDep, state: StateDep) -> PlatformSettingsOut:
    """Return the platform settings in force (operator)."""
    who.require(OPERATOR)
    with state.db.read() as conn:
        return PlatformSettingsOut(**platform.load(conn).as_dict())


@router.patch("/platform/settings", response_model=PlatformSettingsOut)
def patch_settings(
    body: PlatformSettingsPatch, who: PrincipalDep, state: StateDep
) -> PlatformSettingsOut:
    """Change platform settings, all or nothing, audit-logged (operator)."""
    who.require(OPERATOR)
    with state.db.write() as conn:
        updated = platform.update(conn, body.model_dump(exclude_unset=True), actor=who.ref)
    state.platform.invalidate()
    return PlatformSettingsOut(**updated.as_dict())
