"""The review queue in the consoles (operator: every program; merchant: its own) and a
program's traffic-quality settings (the merchant's "Traffic quality" tab)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from tuike.domain import ids
from tuike.domain.catalog import Program
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.fraud import FraudConfig, all_rules
from tuike.services import audit, catalog, review
from tuike.services.users import User
from tuike.storage import catalog as repo
from tuike.storage import tables as t
from tuike.web.portals.account import error_text, see_other
from tuike.web.portals.rendering import gettext_for, render
from tuike.web.portals.session import (
    CsrfChecked,
    MerchantUser,
    MerchantWriter,
    OperatorUser,
)
from tuike.web.state import get_state

router = APIRouter(include_in_schema=False)
PAGE_ROWS = 100
ACTIONS = ("release", "reject")


def _merchant_programs(conn: Any, user: User) -> list[Program]:
    return repo.list_programs(conn, merchant_id=user.owner_id)


def review_context(
    request: Request, program_ids: Sequence[int] | None, base: str, **extra: Any
) -> dict[str, Any]:
    """Build the queue: held conversions, newest first, with each rule that fired."""
    before = request.query_params.get("before", "")
    with get_state(request).db.read() as conn:
        rows = review.held_conversions(
            conn,
            program_ids=program_ids,
            before_id=before if ids.is_ulid(before) else None,
            limit=PAGE_ROWS,
        )
    _ = gettext_for(request)
    done = request.query_params.get("done", "")
    flash = {"release": _("Released."), "reject": _("Rejected.")}.get(done, "")
    return {
        "rows": rows,
        "titles": {code: rule.title for code, rule in all_rules().items()},
        "base": base,
        "next_page": f"{base}?before={rows[-1].id}" if len(rows) == PAGE_ROWS else "",
        "paged": bool(before),
        "flash": flash,
        "error": "",
        **extra,
    }


def _decide(
    request: Request,
    user: User,
    conversion_id: str,
    action: str,
    reason: str,
    program_ids: Sequence[int] | None,
    base: str,
) -> Response:
    if action not in ACTIONS:
        raise InvalidField("action", "must be release or reject")
    if not ids.is_ulid(conversion_id):
        raise NotFound("conversion")
    try:
        with get_state(request).db.write() as conn:
            if action == "release":
                review.release(
                    conn, conversion_id, actor=user.ref, reason=reason, program_ids=program_ids
                )
            else:
                review.reject(
                    conn,
                    conversion_id,
                    actor=user.ref,
                    by=user.role,
                    reason=reason,
                    program_ids=program_ids,
                )
    except (InvalidField, Conflict) as exc:
        status = 400 if isinstance(exc, InvalidField) else 409
        context = review_context(request, program_ids, base, error=error_text(request, exc))
        return render(request, "review.html", context, status)
    return see_other(f"{base}?done={action}")


@router.get("/operator/review", response_class=HTMLResponse)
def operator_queue(request: Request, user: OperatorUser) -> Response:
    """Show every program's conversions held for review, with their evidence."""
    return render(request, "review.html", review_context(request, None, "/operator/review"))


@router.post("/operator/review/{conversion_id}", dependencies=[CsrfChecked])
def operator_decide(
    request: Request,
    user: OperatorUser,
    conversion_id: str,
    action: str = Form(""),
    reason: str = Form(""),
) -> Response:
    """Release or reject a held conversion, with a reason (audit-logged)."""
    return _decide(request, user, conversion_id, action, reason, None, "/operator/review")


@router.get("/merchant/review", response_class=HTMLResponse)
def merchant_queue(request: Request, user: MerchantUser) -> Response:
    """Show the merchant's conversions held for review, with their evidence."""
    with get_state(request).db.read() as conn:
        program_ids = [p.id for p in _merchant_programs(conn, user)]
    return render(request, "review.html", review_context(request, program_ids, "/merchant/review"))


@router.post("/merchant/review/{conversion_id}", dependencies=[CsrfChecked])
def merchant_decide(
    request: Request,
    user: MerchantWriter,
    conversion_id: str,
    action: str = Form(""),
    reason: str = Form(""),
) -> Response:
    """Release or reject one of the merchant's held conversions (audit-logged)."""
    with get_state(request).db.read() as conn:
        program_ids = [p.id for p in _merchant_programs(conn, user)]
    return _decide(request, user, conversion_id, action, reason, program_ids, "/merchant/review")


def quality_context(
    request: Request, program: Program, *, form: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Build the program's traffic-quality tab: its fraud settings and the rules."""
    config = program.fraud
    values = form or {
        "hold_score": config.hold_score,
        "reject_score": config.reject_score or "",
        "invalid_click_score": config.invalid_click_score,
        "target_countries": ", ".join(sorted(config.target_countries)),
        "disabled": sorted(config.disabled),
    }
    with get_state(request).db.read() as conn:
        held = conn.execute(
            select(func.count())
            .select_from(t.conversions)
            .where(
                t.conversions.c.program_id == program.id,
                t.conversions.c.status == "pending",
                t.conversions.c.needs_review.is_(True),
            )
        ).scalar_one()
    return {
        "program": program,
        "form": values,
        "rules": sorted(all_rules().values(), key=lambda r: (r.stage, r.code)),
        "held": held,
        "error": "",
        "flash": "",
        **extra,
    }


def _own_program(conn: Any, user: User, program_id: int) -> Program:
    program = repo.get_program(conn, program_id)
    if program is None or program.merchant_id != user.owner_id:
        raise NotFound("program")
    return program


@router.get("/merchant/programs/{program_id}/quality", response_class=HTMLResponse)
def quality(request: Request, user: MerchantUser, program_id: int) -> Response:
    """Show a program's fraud settings: scores that hold, reject and filter; rules on/off."""
    with get_state(request).db.read() as conn:
        program = _own_program(conn, user, program_id)
    return render(request, "merchant/quality.html", quality_context(request, program))


def _score(raw: str, field: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidField(f"fraud_config.{field}", "must be a whole number 1 to 100")
    return int(raw)


@router.post("/merchant/programs/{program_id}/quality", dependencies=[CsrfChecked])
async def save_quality(request: Request, user: MerchantWriter, program_id: int) -> Response:
    """Save a program's fraud settings (checked like the API's, audit-logged)."""
    form = await request.form()
    raw = {
        key: str(form.get(key, ""))
        for key in ("hold_score", "reject_score", "invalid_click_score", "target_countries")
    }
    disabled = [str(v) for v in form.getlist("disabled")]
    shown = {**raw, "disabled": disabled}
    state = get_state(request)
    with state.db.read() as conn:
        program = _own_program(conn, user, program_id)
    try:
        data: dict[str, Any] = {
            "target_countries": [
                c.strip() for c in raw["target_countries"].replace(";", ",").split(",") if c.strip()
            ],
            "disabled": disabled,
            "reject_score": _score(raw["reject_score"], "reject_score"),
        }
        for key in ("hold_score", "invalid_click_score"):
            value = _score(raw[key], key)
            if value is not None:
                data[key] = value
        config = FraudConfig.parse(data)
        with state.db.write() as conn:
            updated = catalog.update_program(conn, program, fraud_config=config.as_dict())
            audit.record(
                conn,
                user.ref,
                "program.fraud_config",
                f"program:{program.id}",
                was=program.fraud.as_dict(),
                now=config.as_dict(),
            )
    except InvalidField as exc:
        context = quality_context(request, program, form=shown, error=error_text(request, exc))
        return render(request, "merchant/quality.html", context, 400)
    state.links.invalidate()  # the tracker's cached programs carry their click settings
    _ = gettext_for(request)
    return render(
        request, "merchant/quality.html", quality_context(request, updated, flash=_("Saved."))
    )
