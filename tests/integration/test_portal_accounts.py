"""Accounts in the portals: sign-up, sign-in with CSRF and a rate limit, reset, bans, keys."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from factories.http import bearer, snapshot
from factories.portal import PASSWORD, csrf_of, login, make_user, post_form
from factories.world import make_world
from tuike.services import mail
from tuike.storage import tables as t

NEW_PASSWORD = "a much better passphrase"


def _count(db, table) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _affiliate_form(**over):
    form = {
        "name": "小美",
        "email": "xiaomei@example.com",
        "password": PASSWORD,
        "timezone": "Asia/Shanghai",
        "channel_kind": "im",
        "channel_name": "数码群",
        "channel_url": "wx-group-123",
    }
    return form | over


def test_affiliate_signs_up_with_a_channel_and_is_signed_in(db, client):
    r = post_form(client, "/signup/affiliate", "/signup/affiliate", _affiliate_form())
    assert r.status_code == 303 and r.headers["location"] == "/affiliate/programs"
    cookie = r.headers["set-cookie"]
    assert "tk_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/affiliate")
    assert page.status_code == 200 and "小美" in page.text
    with db.read() as conn:
        aff = conn.execute(select(t.affiliates)).one()
        channel = conn.execute(select(t.channels)).one()
        user = conn.execute(select(t.users)).one()
    assert (aff.email, channel.kind, channel.name) == ("xiaomei@example.com", "im", "数码群")
    assert user.role == "affiliate" and user.owner_id == aff.id
    assert user.password_hash.startswith("$argon2") and PASSWORD not in user.password_hash


def test_bad_sign_ups_say_why_and_create_nothing(db, client):
    before = snapshot(db)
    for over, text in (
        ({"channel_kind": "", "channel_name": "", "channel_url": ""}, "channel"),
        ({"password": "short"}, "10 characters"),
        ({"email": "not-an-email"}, "email"),
        ({"timezone": "Mars/Base"}, "time"),
    ):
        r = post_form(client, "/signup/affiliate", "/signup/affiliate", _affiliate_form(**over))
        assert r.status_code == 400 and text in r.text.lower(), (over, r.text[-800:])
        assert 'data-testid="error"' in r.text
    assert snapshot(db) == before


def test_a_post_without_this_browsers_csrf_token_is_refused(db, client):
    world = make_world(db)
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    assert login(client, email).status_code == 303
    before = snapshot(db)
    r = client.post("/affiliate/profile", data={"name": "Hacked", "payout_method": "bank"})
    assert r.status_code == 403 and "form expired" in r.text.lower()
    r = client.post("/affiliate/profile", data={"name": "Hacked", "csrf": "0" * 64})
    assert r.status_code == 403
    # Another browser's valid token does not work here either.
    from fastapi.testclient import TestClient

    with TestClient(client.app, follow_redirects=False) as other:
        token = csrf_of(other.get("/login").text)
    assert client.post("/affiliate/profile", data={"name": "x", "csrf": token}).status_code == 403
    # Anonymous forms need it too.
    client.cookies.clear()
    r = client.post("/login", data={"email": email, "password": PASSWORD})
    assert r.status_code == 403
    assert snapshot(db) == before


def test_logins_are_rate_limited_per_email(db, client, settings):
    world = make_world(db)
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    for _ in range(settings.login_max_failures):
        r = login(client, email, "wrong password!")
        assert r.status_code == 400 and "Wrong email address or password" in r.text
    # Now even the right password is refused, without being checked.
    r = login(client, email, PASSWORD)
    assert r.status_code == 429 and "Too many failed attempts" in r.text
    assert "tk_session" not in r.headers.get("set-cookie", "")
    # Another account from the same address is not locked out by it.
    other = make_user(db, "affiliate", world.other_affiliate_id, "bob@example.com")
    assert login(client, other).status_code == 303


def test_password_reset_by_mailed_token(db, client):
    world = make_world(db)
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    r = post_form(client, "/password/forgot", "/password/forgot", {"email": email})
    assert r.status_code == 200 and 'data-testid="reset-sent"' in r.text
    unknown = post_form(client, "/password/forgot", "/password/forgot", {"email": "x@example.com"})
    assert unknown.status_code == 200 and 'data-testid="reset-sent"' in unknown.text
    with db.read() as conn:
        (message,) = mail.outbox(conn)
    assert message.to == email
    link = re.search(r"http://testserver(/password/reset/\S+)", message.body).group(1)
    r = post_form(client, link, link, {"password": NEW_PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/affiliate"
    client.cookies.clear()
    assert login(client, email, PASSWORD).status_code == 400
    assert login(client, email, NEW_PASSWORD).status_code == 303
    # The link works once.
    assert client.get(link).status_code == 400


def test_logout_ends_the_session_on_the_server(db, client):
    world = make_world(db)
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    login(client, email)
    raw = client.cookies.get("tk_session")
    r = post_form(client, "/affiliate", "/logout", {})
    assert r.status_code == 303
    client.cookies.set("tk_session", raw)  # a stolen cookie no longer opens anything
    assert client.get("/affiliate").status_code == 401


def test_merchant_sign_up_waits_for_the_operator(db, client):
    form = {
        "company": "好物商城",
        "name": "王经理",
        "email": "wang@example.com",
        "password": PASSWORD,
        "timezone": "Asia/Shanghai",
    }
    r = post_form(client, "/signup/merchant", "/signup/merchant", form)
    assert r.status_code == 303
    page = client.get("/merchant")
    assert page.status_code == 403 and "awaits the operator" in page.text
    with db.read() as conn:
        merchant = conn.execute(select(t.merchants)).one()
    assert merchant.status == "pending"
    client.cookies.clear()
    login(client, make_user(db, "operator", None, "op@example.com"))
    listing = client.get("/operator/merchants")
    assert "好物商城" in listing.text
    r = post_form(
        client,
        "/operator/merchants",
        f"/operator/merchants/{merchant.id}/status",
        {"status": "active", "reason": "documents checked"},
    )
    assert r.status_code == 303
    audit_page = client.get("/operator/audit").text
    assert "merchant.active" in audit_page and "documents checked" in audit_page
    client.cookies.clear()
    login(client, "wang@example.com")
    assert client.get("/merchant").status_code == 200


def test_a_banned_affiliate_loses_sessions_and_keys(db, client):
    world = make_world(db)
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    login(client, email)
    r = post_form(client, "/account/keys", "/account/keys", {"name": "my tool"})
    assert r.status_code == 201
    key = re.search(r'data-testid="new-key">.*?<code class="copy">([^<]+)</code>', r.text, re.S)
    key = key.group(1)
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    affiliate_cookie = client.cookies.get("tk_session")
    client.cookies.clear()
    login(client, make_user(db, "operator", None, "op@example.com"))
    form = {"status": "banned", "reason": "link spam in 300 groups"}
    url = f"/operator/affiliates/{world.affiliate_id}/status"
    assert post_form(client, "/operator/affiliates", url, {"status": "banned"}).status_code == 400
    assert post_form(client, "/operator/affiliates", url, form).status_code == 303
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 401
    client.cookies.clear()
    client.cookies.set("tk_session", affiliate_cookie)
    assert client.get("/affiliate").status_code == 401
    client.cookies.clear()
    assert login(client, email).status_code == 400


def test_api_keys_are_shown_once_and_revocable(db, client):
    world = make_world(db)
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    r = post_form(client, "/account/keys", "/account/keys", {"name": "scraper"})
    key = re.search(r'<code class="copy">([^<]+)</code>', r.text).group(1)
    page = client.get("/account/keys").text
    assert key not in page and key[:10] in page
    with db.read() as conn:
        row = conn.execute(select(t.api_keys).where(t.api_keys.c.name == "scraper")).one()
    assert row.key_hash != key and row.role == "affiliate" and row.owner_id == world.affiliate_id
    assert client.get("/api/v1/links", headers=bearer(key)).status_code == 200
    r = post_form(client, "/account/keys", f"/account/keys/{row.id}/revoke", {})
    assert r.status_code == 303
    assert client.get("/api/v1/links", headers=bearer(key)).status_code == 401


def test_language_switch_is_remembered_and_next_never_leaves_the_site(db, client):
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert "Sign in" in page.text
    r = client.post(
        "/lang",
        data={"locale": "zh_CN", "next": "https://evil.example/", "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "登录" in client.get("/login").text
    for target in ("//evil.example", "/\\evil.example", "https:evil.example"):
        r = post_form(client, "/login", "/lang", {"locale": "en", "next": target})
        assert r.headers["location"] == "/", target
