"""The affiliate's postback screen: URL templates, a test postback, the delivery log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.services import postbacks as svc
from tuike.storage import catalog as repo
from tuike.web.portals.account import error_text, see_other
from tuike.web.portals.rendering import N_, gettext_for, render
from tuike.web.portals.session import AffiliateUser, CsrfChecked
from tuike.web.state import get_state
from tuike.workers.postbacks import TestResult, fire_test

router = APIRouter(prefix="/affiliate", include_in_schema=False)
PAGE = "affiliate/postbacks.html"
LOG_SIZE = 50

MACRO_HELP = (
    ("{click_id}", N_("tuike's click id")),
    ("{aff_click_id}", N_("your own click id, sent as aff_click_id on the tracking link")),
    ("{sub1} … {sub5}", N_("the sub ids of the click")),
    ("{event}", N_("the event: sale, lead, install or a custom one")),
    ("{order_id}", N_("the merchant's order id")),
    ("{payout}", N_("your commission after this change, e.g. 19.90 (0.00 once rejected)")),
    ("{currency}", N_("the currency of the payout, e.g. CNY")),
    ("{status}", N_("the new status: pending, approved, rejected or refunded")),
)


def postbacks_context(
    request: Request,
    user: Any,
    *,
    error: str = "",
    flash: str = "",
    test: TestResult | None = None,
    form: dict[str, Any] | None = None,
    test_form: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the postback page: templates, approved programs, macros, latest deliveries."""
    with get_state(request).db.read() as conn:
        urls = svc.postback_urls(conn, user.owner_id)
        approved = {
            m.program_id
            for m in repo.list_memberships(conn, affiliate_id=user.owner_id, status="approved")
        }
        names = {p.id: p.name for p in repo.list_programs(conn)}
        log = svc.deliveries(conn, user.owner_id, LOG_SIZE)
    default = next((u for u in urls if u.program_id == svc.DEFAULT), None)
    form = form or {}
    # After a refused save, the forms show what was sent rather than what is stored.
    default_value = default.url_template if default else ""
    if form.get("program_id") == svc.DEFAULT:
        default_value = form["url_template"]
    return {
        "default": default,
        "default_value": default_value,
        "program_urls": [u for u in urls if u.program_id != svc.DEFAULT],
        "programs": [(pid, names[pid]) for pid in sorted(approved) if pid in names],
        "program_names": names,
        "macros": MACRO_HELP,
        "deliveries": log,
        "test": test,
        "error": error,
        "flash": flash,
        "form": form,
        "test_form": test_form or {},
    }


@router.get("/postbacks", response_class=HTMLResponse)
def postbacks(request: Request, user: AffiliateUser) -> Response:
    """Show the postback URL templates, the macros and the latest deliveries."""
    _ = gettext_for(request)
    flash = _("Saved.") if request.query_params.get("saved") else ""
    return render(request, PAGE, postbacks_context(request, user, flash=flash))


@router.post("/postbacks", dependencies=[CsrfChecked])
def save_postback(
    request: Request,
    user: AffiliateUser,
    program_id: int = Form(0),
    url_template: str = Form(""),
) -> Response:
    """Set the account's postback URL template, or a program's."""
    try:
        with get_state(request).db.write() as conn:
            svc.set_postback_url(conn, user.owner_id, program_id, url_template)
    except (InvalidField, Conflict, NotFound) as exc:
        form = {"program_id": program_id, "url_template": url_template}
        context = postbacks_context(request, user, error=_error(request, exc), form=form)
        return render(request, PAGE, context, 404 if isinstance(exc, NotFound) else 400)
    return see_other("/affiliate/postbacks?saved=1")


@router.post("/postbacks/{program_id}/delete", dependencies=[CsrfChecked])
def delete_postback(request: Request, user: AffiliateUser, program_id: int) -> Response:
    """Remove the account's template (0) or a program's."""
    with get_state(request).db.write() as conn:
        svc.delete_postback_url(conn, user.owner_id, program_id)
    return see_other("/affiliate/postbacks")


@router.post("/postbacks/test", dependencies=[CsrfChecked])
def test_postback(
    request: Request,
    user: AffiliateUser,
    program_id: int = Form(0),
    url_template: str = Form(""),
) -> Response:
    """Send a sample postback now and show the answer."""
    state = get_state(request)
    form = {"program_id": program_id, "url_template": url_template}
    try:
        result = fire_test(state.db, state.settings, user.owner_id, program_id, url_template)
    except svc.TooManyTests as exc:
        context = postbacks_context(request, user, error=exc.message, test_form=form)
        return render(request, PAGE, context, 429)
    except (InvalidField, Conflict, NotFound) as exc:
        context = postbacks_context(request, user, error=_error(request, exc), test_form=form)
        return render(request, PAGE, context, 400)
    context = postbacks_context(request, user, test=result, test_form=form)
    return render(request, PAGE, context)


def _error(request: Request, exc: Exception) -> str:
    if isinstance(exc, NotFound):
        _ = gettext_for(request)
        if exc.what == "postback URL":
            return _("Set a postback URL first, or enter one to test.")
        return _("This program does not exist.")
    return error_text(request, exc)
