"""The authorization matrix: every portal and API route, tried as six callers.

Callers: anonymous, affiliate A, affiliate B, merchant A, merchant B and the operator.
Every case targets A's things (merchant A's program, affiliate A's link, membership,
conversion and key). A denied case must answer 401, 403 or 404 and, when it is a write,
leave every table unchanged. Allowed reads must answer; allowed writes are exercised by
the functional tests (running them here would change what the next case sees). A route
missing from the table below fails the test, so a new route cannot skip the matrix.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest

from factories.http import bearer, click, convert, snapshot
from factories.portal import make_user
from factories.world import make_world
from tuike.services import abuse, auth, catalog, creatives, keys, postbacks, promotion
from tuike.services.users import find_user
from tuike.storage import catalog as repo

ROLES = ("anon", "affA", "affB", "merchA", "merchB", "op")
KEYED = ROLES[1:]
AFF, MERCH = ("affA", "affB"), ("merchA", "merchB")
PUBLIC = "public"


def _walk(routes: Any) -> Any:
    for route in routes:
        if getattr(route, "methods", None):
            yield route
        elif hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Return every (method, path template) the application serves."""
    out = set()
    for route in _walk(app.router.routes):
        for method in set(route.methods) - {"HEAD"}:
            out.add((method, route.path))
    return out


@pytest.fixture
def matrix_world(db: Any, client: Any) -> dict[str, Any]:
    w = make_world(db)
    with db.write() as conn:
        # Affiliate A's postback URL: the conversion below queues a delivery for A.
        postbacks.set_postback_url(conn, w.affiliate_id, 0, "https://pb.example/?o={order_id}")
    conv = convert(client, w.program_key, "MX-1", click(client, w.link.code), amount="100.00")
    with db.write() as conn:
        other_merchant = repo.get_program(conn, w.other_program.id).merchant_id
        merch_b_key = keys.create_key(conn, role="merchant", owner_id=other_merchant, name="b")
        membership = repo.get_membership(conn, w.program.id, w.affiliate_id)
    emails = {
        "affA": make_user(db, "affiliate", w.affiliate_id, "affa@example.com"),
        "affB": make_user(db, "affiliate", w.other_affiliate_id, "affb@example.com"),
        "merchA": make_user(db, "merchant", w.merchant_id, "mercha@example.com"),
        "merchB": make_user(db, "merchant", other_merchant, "merchb@example.com"),
        "op": make_user(db, "operator", None, "op@example.com"),
    }
    sessions, user_ids = {}, {}
    with db.write() as conn:
        for role, email in emails.items():
            user = find_user(conn, email)
            user_ids[role] = user.id
            sessions[role] = auth.create_session(conn, user, timedelta(hours=1))
        # A's keys were made by A's users (they act for them: team, own keys); B's and the
        # operator's by no user (CLI), so both kinds are tried.
        key_a = keys.create_key(
            conn, role="affiliate", owner_id=w.affiliate_id, name="mine", user_id=user_ids["affA"]
        )
        key_a_id = keys.list_keys(conn, user_id=user_ids["affA"])[0].id
        program = repo.get_program(conn, w.program.id)
        creative = creatives.add_text_link(conn, program, name="T", text="Shop now")
        coupon = catalog.create_coupon(
            conn, program=program, affiliate_id=w.affiliate_id, code="AFFA"
        )
        token, invite = promotion.create_invite(conn, program)
        merch_a_key = keys.create_key(
            conn, role="merchant", owner_id=w.merchant_id, name="own", user_id=user_ids["merchA"]
        )
        report = abuse.file_report(
            conn, link=w.link.code, kind="group_spam", where_url="WeChat group", salt="s"
        )
    assert key_a
    return {
        "w": w,
        "conversion": conv["conversion_id"],
        "membership": membership.id,
        "sessions": sessions,
        "user_ids": user_ids,
        "api_keys": {
            "affA": key_a,
            "affB": w.other_affiliate_key,
            "merchA": merch_a_key,
            "merchB": merch_b_key,
            "op": w.operator_key,
        },
        "key_a": key_a_id,
        "creative": creative.id,
        "coupon": coupon.id,
        "invite": invite.id,
        "token": token,
        "report": report.id,
    }


def cases(m: dict[str, Any]) -> list[tuple[str, str, str, Any, Any]]:
    """(method, template, concrete path, body, allowed roles or PUBLIC) for every route."""
    w = m["w"]
    p, link, aff = w.program.id, w.link, w.affiliate_id
    conv, mem, mid = m["conversion"], m["membership"], w.merchant_id
    a = "/api/v1"
    merch_a_user = m["user_ids"]["merchA"]
    return [
        # public pages, tracker and API documents
        ("GET", "/", "/", None, PUBLIC),
        ("GET", "/healthz", "/healthz", None, PUBLIC),
        ("GET", "/c/{code}", f"/c/{link.code}", None, PUBLIC),
        ("GET", "/pb", "/pb", None, PUBLIC),
        ("GET", "/px.gif", "/px.gif", None, PUBLIC),
        ("GET", f"{a}/openapi.json", f"{a}/openapi.json", None, PUBLIC),
        ("GET", f"{a}/docs", f"{a}/docs", None, PUBLIC),
        ("GET", "/docs/oauth2-redirect", "/docs/oauth2-redirect", None, PUBLIC),
        ("GET", "/login", "/login", None, PUBLIC),
        ("POST", "/login", "/login", None, PUBLIC),
        ("POST", "/logout", "/logout", None, PUBLIC),
        ("POST", "/lang", "/lang", None, PUBLIC),
        ("GET", "/signup/affiliate", "/signup/affiliate", None, PUBLIC),
        ("POST", "/signup/affiliate", "/signup/affiliate", None, PUBLIC),
        ("GET", "/signup/merchant", "/signup/merchant", None, PUBLIC),
        ("POST", "/signup/merchant", "/signup/merchant", None, PUBLIC),
        ("GET", "/password/forgot", "/password/forgot", None, PUBLIC),
        ("POST", "/password/forgot", "/password/forgot", None, PUBLIC),
        ("GET", "/password/reset/{token}", "/password/reset/x", None, PUBLIC),
        ("POST", "/password/reset/{token}", "/password/reset/x", None, PUBLIC),
        ("GET", "/report-abuse", "/report-abuse", None, PUBLIC),
        ("POST", "/report-abuse", "/report-abuse", None, PUBLIC),
        # portal: any signed-in user
        ("GET", "/account/keys", "/account/keys", None, KEYED),
        ("POST", "/account/keys", "/account/keys", {"name": "k"}, KEYED),
        (
            "POST",
            "/account/keys/{key_id}/revoke",
            f"/account/keys/{m['key_a']}/revoke",
            {},
            ("affA",),
        ),
        # affiliate portal
        ("GET", "/affiliate", "/affiliate", None, AFF),
        ("GET", "/affiliate/programs", "/affiliate/programs", None, AFF),
        (
            "POST",
            "/affiliate/programs/{program_id}/apply",
            f"/affiliate/programs/{p}/apply",
            {},
            AFF,
        ),
        ("GET", "/affiliate/links", "/affiliate/links", None, AFF),
        ("POST", "/affiliate/links", "/affiliate/links", {"program_id": str(p)}, AFF),
        (
            "GET",
            "/affiliate/links/{code}/qr.{kind}",
            f"/affiliate/links/{link.code}/qr.svg",
            None,
            ("affA",),
        ),
        ("GET", "/affiliate/reports", "/affiliate/reports", None, AFF),
        ("GET", "/affiliate/profile", "/affiliate/profile", None, AFF),
        ("POST", "/affiliate/profile", "/affiliate/profile", {"name": "x"}, AFF),
        ("POST", "/affiliate/channels", "/affiliate/channels", {"kind": "blog"}, AFF),
        ("GET", "/affiliate/news", "/affiliate/news", None, AFF),
        # invitation links: the page is public, joining takes an affiliate
        ("GET", "/join/{token}", f"/join/{m['token']}", None, PUBLIC),
        ("POST", "/join/{token}", f"/join/{m['token']}", {}, AFF),
        (
            "GET",
            "/creatives/{creative_id}/image.{ext}",
            f"/creatives/{m['creative']}/image.png",
            None,
            PUBLIC,
        ),
        # each affiliate's own postbacks: the session decides whose, never the path
        ("GET", "/affiliate/postbacks", "/affiliate/postbacks", None, AFF),
        (
            "POST",
            "/affiliate/postbacks",
            "/affiliate/postbacks",
            {"program_id": "0", "url_template": "https://e.example/"},
            AFF,
        ),
        (
            "POST",
            "/affiliate/postbacks/{program_id}/delete",
            "/affiliate/postbacks/0/delete",
            {},
            AFF,
        ),
        ("POST", "/affiliate/postbacks/test", "/affiliate/postbacks/test", {}, AFF),
        # merchant console
        ("GET", "/merchant", "/merchant", None, MERCH),
        ("GET", "/merchant/programs", "/merchant/programs", None, MERCH),
        ("GET", "/merchant/programs/{program_id}", f"/merchant/programs/{p}", None, ("merchA",)),
        (
            "POST",
            "/merchant/programs/{program_id}",
            f"/merchant/programs/{p}",
            {"name": "x"},
            ("merchA",),
        ),
        ("GET", "/merchant/affiliates", "/merchant/affiliates", None, MERCH),
        ("GET", "/merchant/affiliates/discover", "/merchant/affiliates/discover", None, MERCH),
        (
            "POST",
            "/merchant/memberships/{membership_id}",
            f"/merchant/memberships/{mem}",
            {"status": "banned", "reason": "r"},
            ("merchA",),
        ),
        ("GET", "/merchant/conversions", "/merchant/conversions", None, MERCH),
        (
            "POST",
            "/merchant/conversions/review",
            "/merchant/conversions/review",
            {"ids": conv, "action": "rejected", "reason": "r"},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/integration",
            f"/merchant/programs/{p}/integration",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/keys",
            f"/merchant/programs/{p}/keys",
            {"name": "k"},
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/test-conversion",
            f"/merchant/programs/{p}/test-conversion",
            {"amount": "1.00"},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/creatives",
            f"/merchant/programs/{p}/creatives",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/creatives",
            f"/merchant/programs/{p}/creatives",
            {"kind": "text", "name": "n", "body": "b"},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/coupons",
            f"/merchant/programs/{p}/coupons",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/coupons",
            f"/merchant/programs/{p}/coupons",
            {"affiliate_id": str(aff), "code": "ZZ9"},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/groups",
            f"/merchant/programs/{p}/groups",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/groups",
            f"/merchant/programs/{p}/groups",
            {"name": "G", "cps_percent": "9"},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/invites",
            f"/merchant/programs/{p}/invites",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/invites",
            f"/merchant/programs/{p}/invites",
            {},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/announcements",
            f"/merchant/programs/{p}/announcements",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/announcements",
            f"/merchant/programs/{p}/announcements",
            {"title": "t", "body": "b"},
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/groups/delete",
            f"/merchant/programs/{p}/groups/delete",
            {"name": "G"},
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/creatives/{creative_id}/status",
            f"/merchant/creatives/{m['creative']}/status",
            {"status": "archived"},
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/coupons/{coupon_id}/status",
            f"/merchant/coupons/{m['coupon']}/status",
            {"status": "revoked"},
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/invites/{invite_id}/revoke",
            f"/merchant/invites/{m['invite']}/revoke",
            {},
            ("merchA",),
        ),
        # the review queue (a merchant's own programs) and a program's fraud settings
        ("GET", "/merchant/review", "/merchant/review", None, MERCH),
        (
            "POST",
            "/merchant/review/{conversion_id}",
            f"/merchant/review/{conv}",
            {"action": "reject", "reason": "r"},
            ("merchA",),
        ),
        (
            "GET",
            "/merchant/programs/{program_id}/quality",
            f"/merchant/programs/{p}/quality",
            None,
            ("merchA",),
        ),
        (
            "POST",
            "/merchant/programs/{program_id}/quality",
            f"/merchant/programs/{p}/quality",
            {"hold_score": "10", "reject_score": "20"},
            ("merchA",),
        ),
        ("GET", "/merchant/team", "/merchant/team", None, MERCH),
        ("POST", "/merchant/team", "/merchant/team", {"email": "n@example.com"}, MERCH),
        (
            "POST",
            "/merchant/team/{user_id}",
            f"/merchant/team/{merch_a_user}",
            {"member_role": "analyst"},
            ("merchA",),
        ),
        # operator console
        ("GET", "/operator", "/operator", None, ("op",)),
        ("GET", "/operator/merchants", "/operator/merchants", None, ("op",)),
        ("GET", "/operator/affiliates", "/operator/affiliates", None, ("op",)),
        (
            "POST",
            "/operator/{kind}s/{owner_id}/status",
            f"/operator/merchants/{mid}/status",
            {"status": "banned", "reason": "r"},
            ("op",),
        ),
        ("GET", "/operator/programs", "/operator/programs", None, ("op",)),
        ("GET", "/operator/audit", "/operator/audit", None, ("op",)),
        ("GET", "/operator/review", "/operator/review", None, ("op",)),
        (
            "POST",
            "/operator/review/{conversion_id}",
            f"/operator/review/{conv}",
            {"action": "reject", "reason": "r"},
            ("op",),
        ),
        ("GET", "/operator/abuse", "/operator/abuse", None, ("op",)),
        (
            "POST",
            "/operator/abuse/{report_id}/resolve",
            f"/operator/abuse/{m['report']}/resolve",
            {"status": "upheld", "reason": "r"},
            ("op",),
        ),
        ("GET", "/operator/outbox", "/operator/outbox", None, ("op",)),
        ("GET", "/operator/settings", "/operator/settings", None, ("op",)),
        (
            "POST",
            "/operator/settings",
            "/operator/settings",
            {"platform_name": "Taken", "default_cookie_days": "7"},
            ("op",),
        ),
        # REST API (keys); list routes answer every key with its own slice
        ("GET", f"{a}/me", f"{a}/me", None, KEYED),
        ("POST", f"{a}/keys", f"{a}/keys", {"role": "affiliate", "owner_id": aff}, ("op",)),
        ("GET", f"{a}/merchants", f"{a}/merchants", None, (*MERCH, "op")),
        ("POST", f"{a}/merchants", f"{a}/merchants", {"name": "X"}, ("op",)),
        ("GET", f"{a}/programs", f"{a}/programs", None, KEYED),
        (
            "POST",
            f"{a}/programs",
            f"{a}/programs",
            {"name": "X", "landing_url": "https://x.example/", "commission_plan": {}},
            (*MERCH, "op"),
        ),
        ("GET", f"{a}/programs/{{program_id}}", f"{a}/programs/{p}", None, (*AFF, "merchA", "op")),
        (
            "PATCH",
            f"{a}/programs/{{program_id}}",
            f"{a}/programs/{p}",
            {"name": "R"},
            ("merchA", "op"),
        ),
        ("GET", f"{a}/affiliates", f"{a}/affiliates", None, KEYED),
        ("GET", f"{a}/affiliates/directory", f"{a}/affiliates/directory", None, (*MERCH, "op")),
        (
            "POST",
            f"{a}/affiliates",
            f"{a}/affiliates",
            {"name": "X", "email": "x@example.com"},
            ("op",),
        ),
        (
            "GET",
            f"{a}/affiliates/{{affiliate_id}}",
            f"{a}/affiliates/{aff}",
            None,
            ("affA", *MERCH, "op"),
        ),
        (
            "POST",
            f"{a}/affiliates/{{affiliate_id}}/channels",
            f"{a}/affiliates/{aff}/channels",
            {"kind": "blog", "name": "b", "url": "u"},
            ("affA", "op"),
        ),
        # affiliate A's postbacks: A or the operator acting for A
        (
            "GET",
            f"{a}/affiliates/{{affiliate_id}}/postbacks",
            f"{a}/affiliates/{aff}/postbacks",
            None,
            ("affA", "op"),
        ),
        (
            "PUT",
            f"{a}/affiliates/{{affiliate_id}}/postbacks/{{program_id}}",
            f"{a}/affiliates/{aff}/postbacks/0",
            {"url_template": "https://e.example/"},
            ("affA", "op"),
        ),
        (
            "DELETE",
            f"{a}/affiliates/{{affiliate_id}}/postbacks/{{program_id}}",
            f"{a}/affiliates/{aff}/postbacks/0",
            None,
            ("affA", "op"),
        ),
        (
            "POST",
            f"{a}/affiliates/{{affiliate_id}}/postbacks/test",
            f"{a}/affiliates/{aff}/postbacks/test",
            {},
            ("affA", "op"),
        ),
        (
            "GET",
            f"{a}/affiliates/{{affiliate_id}}/postback-deliveries",
            f"{a}/affiliates/{aff}/postback-deliveries",
            None,
            ("affA", "op"),
        ),
        ("GET", f"{a}/memberships", f"{a}/memberships", None, KEYED),
        (
            "POST",
            f"{a}/programs/{{program_id}}/memberships",
            f"{a}/programs/{p}/memberships",
            {},
            (*AFF, "op"),
        ),
        (
            "PATCH",
            f"{a}/memberships/{{membership_id}}",
            f"{a}/memberships/{mem}",
            {"status": "banned"},
            ("merchA", "op"),
        ),
        (
            "GET",
            f"{a}/programs/{{program_id}}/creatives",
            f"{a}/programs/{p}/creatives",
            None,
            (*AFF, "merchA", "op"),
        ),
        (
            "POST",
            f"{a}/programs/{{program_id}}/creatives",
            f"{a}/programs/{p}/creatives",
            {"kind": "text", "name": "T"},
            ("merchA", "op"),
        ),
        (
            "POST",
            f"{a}/programs/{{program_id}}/banners",
            f"{a}/programs/{p}/banners",
            {"name": "B"},
            ("merchA", "op"),
        ),
        (
            "PATCH",
            f"{a}/creatives/{{creative_id}}",
            f"{a}/creatives/{m['creative']}",
            {"status": "archived"},
            ("merchA", "op"),
        ),
        (
            "PATCH",
            f"{a}/coupons/{{coupon_id}}",
            f"{a}/coupons/{m['coupon']}",
            {"status": "revoked"},
            ("merchA", "op"),
        ),
        (
            "GET",
            f"{a}/programs/{{program_id}}/invites",
            f"{a}/programs/{p}/invites",
            None,
            ("merchA", "op"),
        ),
        (
            "POST",
            f"{a}/programs/{{program_id}}/invites",
            f"{a}/programs/{p}/invites",
            {},
            ("merchA", "op"),
        ),
        (
            "POST",
            f"{a}/invites/{{invite_id}}/revoke",
            f"{a}/invites/{m['invite']}/revoke",
            {},
            ("merchA", "op"),
        ),
        ("POST", f"{a}/invites/accept", f"{a}/invites/accept", {"token": m["token"]}, AFF),
        (
            "POST",
            f"{a}/programs/{{program_id}}/announcements",
            f"{a}/programs/{p}/announcements",
            {"title": "t", "body": "b"},
            ("merchA", "op"),
        ),
        ("GET", f"{a}/announcements", f"{a}/announcements", None, KEYED),
        ("GET", f"{a}/links", f"{a}/links", None, KEYED),
        ("POST", f"{a}/links", f"{a}/links", {"program_id": p}, (*AFF, "op")),
        (
            "PATCH",
            f"{a}/links/{{link_id}}",
            f"{a}/links/{link.id}",
            {"status": "paused"},
            ("affA", "merchA", "op"),
        ),
        ("GET", f"{a}/coupons", f"{a}/coupons", None, KEYED),
        (
            "POST",
            f"{a}/coupons",
            f"{a}/coupons",
            {"program_id": p, "affiliate_id": aff, "code": "NEW"},
            ("merchA", "op"),
        ),
        ("POST", f"{a}/conversions", f"{a}/conversions", {"order_id": "X", "amount": "1"}, ()),
        ("GET", f"{a}/conversions", f"{a}/conversions", None, KEYED),
        (
            "GET",
            f"{a}/conversions/{{conversion_id}}",
            f"{a}/conversions/{conv}",
            None,
            ("affA", "merchA", "op"),
        ),
        ("GET", f"{a}/reports", f"{a}/reports", None, KEYED),
        # the review queue: the operator, or a merchant for its own programs
        ("GET", f"{a}/review/conversions", f"{a}/review/conversions", None, (*MERCH, "op")),
        *(
            (
                "POST",
                f"{a}/review/conversions/{{conversion_id}}/{action}",
                f"{a}/review/conversions/{conv}/{action}",
                {"reason": "r"},
                ("merchA", "op"),
            )
            for action in ("release", "reject")
        ),
        # abuse reports: anyone files one, the operator works them
        ("POST", f"{a}/abuse-reports", f"{a}/abuse-reports", None, PUBLIC),
        ("GET", f"{a}/abuse-reports", f"{a}/abuse-reports", None, ("op",)),
        (
            "POST",
            f"{a}/abuse-reports/{{report_id}}/resolve",
            f"{a}/abuse-reports/{m['report']}/resolve",
            {"status": "upheld", "reason": "r"},
            ("op",),
        ),
        # the ledger routes read A's books: only affiliate A and the operator may
        *(
            (
                "GET",
                f"{a}/{route}",
                f"{a}/{route}?owner_type=affiliate&owner_id={aff}",
                None,
                ("affA", "op"),
            )
            for route in ("balances", "ledger/lines", "statements")
        ),
        ("GET", f"{a}/notifications", f"{a}/notifications", None, (*MERCH, "op")),
        (
            "POST",
            f"{a}/merchants/{{merchant_id}}/top-ups",
            f"{a}/merchants/{mid}/top-ups",
            {"amount": "10.00", "currency": "CNY", "reference": "T-1"},
            ("op",),
        ),
        (
            "PATCH",
            f"{a}/merchants/{{merchant_id}}/funding",
            f"{a}/merchants/{mid}/funding",
            {"prepaid": True},
            ("op",),
        ),
        ("GET", f"{a}/fx-rates", f"{a}/fx-rates", None, (*MERCH, "op")),
        (
            "POST",
            f"{a}/fx-rates",
            f"{a}/fx-rates",
            {"base": "USD", "quote": "CNY", "rate": "7.1"},
            ("op",),
        ),
        ("GET", f"{a}/platform/settings", f"{a}/platform/settings", None, ("op",)),
        # accounts: public sign-up and reset, the team, one's keys, the operator's decisions
        ("POST", f"{a}/signup/affiliate", f"{a}/signup/affiliate", None, PUBLIC),
        ("POST", f"{a}/signup/merchant", f"{a}/signup/merchant", None, PUBLIC),
        ("POST", f"{a}/password/forgot", f"{a}/password/forgot", None, PUBLIC),
        ("POST", f"{a}/password/reset", f"{a}/password/reset", None, PUBLIC),
        ("GET", f"{a}/team", f"{a}/team?merchant_id={mid}", None, ("merchA", "op")),
        ("POST", f"{a}/team", f"{a}/team", {"email": "n@example.com"}, ("merchA",)),
        (
            "PATCH",
            f"{a}/team/{{user_id}}",
            f"{a}/team/{merch_a_user}",
            {"member_role": "analyst"},
            ("merchA",),
        ),
        ("GET", f"{a}/keys", f"{a}/keys", None, KEYED),
        ("DELETE", f"{a}/keys/{{key_id}}", f"{a}/keys/{m['key_a']}", None, ("affA", "op")),
        *(
            (
                "PATCH",
                f"{a}/{kind}s/{{{kind}_id}}/status",
                f"{a}/{kind}s/{owner}/status",
                {"status": "banned", "reason": "r"},
                ("op",),
            )
            for kind, owner in (("merchant", mid), ("affiliate", aff))
        ),
        (
            "PATCH",
            f"{a}/platform/settings",
            f"{a}/platform/settings",
            {"affiliate_signup_open": False},
            ("op",),
        ),
    ]


def _csrf(secret: str, basis: str) -> str:
    return hmac.new(secret.encode(), basis.encode(), hashlib.sha256).hexdigest()


def _send(client: Any, settings: Any, m: dict, role: str, method: str, path: str, body: Any) -> Any:
    client.cookies.clear()
    if path.startswith("/api/"):
        headers = bearer(m["api_keys"][role]) if role != "anon" else {}
        return client.request(method, path, json=body, headers=headers)
    if role == "anon":
        client.cookies.set("tk_anon", "matrix-anon")
        token = _csrf(settings.secret_key, "a:matrix-anon")
    else:
        raw = m["sessions"][role]
        client.cookies.set("tk_session", raw)
        token = _csrf(settings.secret_key, f"s:{raw}")
    if method == "GET":
        return client.get(path)
    return client.post(path, data={**(body or {}), "csrf": token})


def test_every_route_is_in_the_matrix(client, matrix_world):
    listed = {(method, template.split("?")[0]) for method, template, *_ in cases(matrix_world)}
    served = app_routes(client.app)
    assert served - listed == set(), "add these routes to the authorization matrix"
    assert listed - served == set(), "the matrix lists routes that do not exist"


def test_denied_callers_get_401_403_or_404_and_change_nothing(db, client, settings, matrix_world):
    m = matrix_world
    tried = denied = 0
    for method, _template, path, body, allowed in cases(m):
        if allowed == PUBLIC:
            continue
        for role in ROLES:
            if role in allowed:
                if method != "GET":
                    continue  # allowed writes: see the functional tests
                r = _send(client, settings, m, role, method, path, body)
                assert r.status_code < 400, (role, method, path, r.status_code, r.text[:300])
                tried += 1
                continue
            before = snapshot(db) if method != "GET" else None
            r = _send(client, settings, m, role, method, path, body)
            expected = {401} if role == "anon" else {403, 404}
            assert r.status_code in expected, (role, method, path, r.status_code, r.text[:300])
            if before is not None:
                assert snapshot(db) == before, (role, method, path)
            tried += 1
            denied += 1
    protected = [c for c in cases(m) if c[4] != PUBLIC]
    print(f"matrix: {len(protected)} protected routes x {len(ROLES)} callers, {denied} denied")
    assert denied == sum(len(ROLES) - len(c[4]) for c in protected)
