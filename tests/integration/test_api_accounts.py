"""Accounts over /api/v1: sign-up, password reset, the team, one's keys, approvals and bans.

Each route calls the service its portal page calls; these tests check that the API makes
the same rows, follows the same permission rules and changes nothing when it refuses.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories.http import API, assert_error, bearer, snapshot
from factories.portal import PASSWORD, login, make_user, post_form
from factories.world import World, make_world
from tuike.services import audit, keys, mail
from tuike.services.users import find_user
from tuike.storage import tables as t
from tuike.web.app import create_app

NEW_PASSWORD = "a much better passphrase"
AFFILIATE = {
    "name": "小美",
    "email": "xiaomei@example.com",
    "password": PASSWORD,
    "timezone": "Asia/Shanghai",
    "channels": [{"kind": "im", "name": "数码群", "url": "wx-group-123"}],
}
MERCHANT = {
    "company": "好物商城",
    "name": "王经理",
    "email": "wang@example.com",
    "password": PASSWORD,
    "timezone": "Asia/Shanghai",
}


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


def _without_attempts(db: Any) -> dict[str, Any]:
    """Every table but the rate limiter's record of attempts."""
    rows = snapshot(db)
    rows.pop("login_attempts")
    return rows


def _user_key(db: Any, role: str, owner_id: int | None, email: str, **extra: Any) -> str:
    """Make a portal user and a key made by that user; return the key."""
    make_user(db, role, owner_id, email, **extra)
    with db.write() as conn:
        user = find_user(conn, email)
        return keys.create_key(
            conn, role=role, owner_id=owner_id, name=f"{email} key", user_id=user.id
        )


def _actions(db: Any, action: str) -> list[audit.AuditEntry]:
    with db.read() as conn:
        return list(audit.recent(conn, action=action))


# --- sign-up -------------------------------------------------------------------------


def test_affiliate_sign_up_makes_the_rows_the_portal_makes(db, client):
    portal_form = {
        **{k: v for k, v in AFFILIATE.items() if k != "channels"},
        "email": "portal@example.com",
        "channel_kind": "im",
        "channel_name": "数码群",
        "channel_url": "wx-group-123",
    }
    assert (
        post_form(client, "/signup/affiliate", "/signup/affiliate", portal_form).status_code == 303
    )
    client.cookies.clear()
    r = client.post(f"{API}/signup/affiliate", json=AFFILIATE)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "affiliate" and body["status"] == "active"
    with db.read() as conn:
        affiliates = conn.execute(select(t.affiliates).order_by(t.affiliates.c.id)).all()
        channels = conn.execute(select(t.channels).order_by(t.channels.c.id)).all()
        people = conn.execute(select(t.users).order_by(t.users.c.id)).all()
        entries = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id)).all()

    def same(rows: list[Any], *skip: str) -> None:
        a, b = ({k: v for k, v in r._mapping.items() if k not in skip} for r in rows)
        assert a == b

    same(affiliates, "id", "email", "created_at")
    same(channels, "id", "affiliate_id", "created_at")
    same(people, "id", "email", "password_hash", "owner_id", "created_at", "locale")
    assert [e.action for e in entries] == ["affiliate.sign_up", "affiliate.sign_up"]
    api_user = people[1]
    assert (body["user_id"], body["owner_id"]) == (api_user.id, affiliates[1].id)
    assert api_user.password_hash.startswith("$argon2")
    # The answer's key is the API's "signed in at once": it acts for the new user.
    me = client.get(f"{API}/me", headers=bearer(body["key"])).json()
    assert me == {"role": "affiliate", "owner_id": affiliates[1].id, "user_id": api_user.id}
    # And the new user signs in to the portal with the password.
    assert login(client, AFFILIATE["email"]).status_code == 303


def test_merchant_sign_up_waits_for_the_operator(db, client, world):
    r = client.post(f"{API}/signup/merchant", json=MERCHANT)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending" and body["key"].startswith("tk_mc_")
    assert_error(client.get(f"{API}/me", headers=bearer(body["key"])), 401)
    op = bearer(world.operator_key)
    listed = {m["id"]: m for m in client.get(f"{API}/merchants", headers=op).json()}
    assert listed[body["owner_id"]]["status"] == "pending"
    url = f"{API}/merchants/{body['owner_id']}/status"
    r = client.patch(url, json={"status": "active", "reason": "licence checked"}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json() == {"kind": "merchant", "id": body["owner_id"], "status": "active"}
    assert client.get(f"{API}/me", headers=bearer(body["key"])).status_code == 200
    (entry,) = _actions(db, "merchant.active")
    assert entry.detail == {"reason": "licence checked", "was": "pending"}
    assert entry.actor.startswith("key:")


def test_bad_sign_ups_answer_4xx_and_write_nothing(db, client, world):
    make_user(db, "affiliate", world.affiliate_id, "taken@example.com")
    before = _without_attempts(db)
    for path, body, status, field in (
        ("affiliate", {**AFFILIATE, "channels": []}, 400, "channels"),
        ("affiliate", {**AFFILIATE, "password": "short"}, 400, "password"),
        ("affiliate", {**AFFILIATE, "email": "not-an-email"}, 400, "email"),
        ("affiliate", {**AFFILIATE, "timezone": "Mars/Base"}, 400, "timezone"),
        (
            "affiliate",
            {**AFFILIATE, "channels": [{"kind": "tv", "name": "x", "url": "y"}]},
            400,
            None,
        ),
        ("affiliate", {**AFFILIATE, "is_admin": True}, 400, "is_admin"),
        ("affiliate", {**AFFILIATE, "email": "Taken@example.com"}, 409, None),
        ("merchant", {**MERCHANT, "company": ""}, 400, "company"),
        ("merchant", {**MERCHANT, "password": "x" * 201}, 400, "password"),
        ("merchant", {k: v for k, v in MERCHANT.items() if k != "email"}, 400, "email"),
    ):
        r = client.post(f"{API}/signup/{path}", json=body)
        assert r.status_code == status, (body, r.text)
        if field is not None:
            assert_error(r, status, field)
        assert _without_attempts(db) == before, body


def test_closed_sign_up_refuses_and_writes_nothing(db, client, world):
    op = bearer(world.operator_key)
    closed = {"affiliate_signup_open": False, "merchant_signup_open": False}
    assert client.patch(f"{API}/platform/settings", json=closed, headers=op).status_code == 200
    before = snapshot(db)
    for path, body in (("affiliate", AFFILIATE), ("merchant", MERCHANT)):
        r = client.post(f"{API}/signup/{path}", json=body)
        assert_error(r, 403, None)
        assert "sign-up is closed" in r.json()["error"]["message"]
    assert snapshot(db) == before  # not even the rate limiter's row
    reopen = {"affiliate_signup_open": True}
    assert client.patch(f"{API}/platform/settings", json=reopen, headers=op).status_code == 200
    assert client.post(f"{API}/signup/affiliate", json=AFFILIATE).status_code == 201
    assert client.post(f"{API}/signup/merchant", json=MERCHANT).status_code == 403


def test_public_account_routes_are_rate_limited_per_address(db, settings, world):
    limited = settings.model_copy(update={"login_max_failures_per_ip": 3})
    with TestClient(create_app(limited, db), follow_redirects=False) as client:
        for _ in range(3):
            bad = {**AFFILIATE, "password": "short"}
            assert client.post(f"{API}/signup/affiliate", json=bad).status_code == 400
        before = _without_attempts(db)
        r = client.post(f"{API}/signup/affiliate", json=AFFILIATE)
        assert_error(r, 429, None)
        assert int(r.headers["Retry-After"]) == settings.login_window_minutes * 60
        assert client.post(f"{API}/signup/merchant", json=MERCHANT).status_code == 429
        assert _without_attempts(db) == before
        # Password resets have their own allowance, and sign-in is not affected.
        forgot = {"email": "nobody@example.com"}
        assert client.post(f"{API}/password/forgot", json=forgot).status_code == 202
        assert login(client, make_user(db, "operator", None, "op@example.com")).status_code == 303


# --- password reset ------------------------------------------------------------------


def test_forgot_password_never_reveals_whether_an_address_exists(db, client, world):
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    answers = [
        client.post(f"{API}/password/forgot", json={"email": address})
        for address in (email, "ANNA@example.com", "nobody@example.com", "not an address", "")
    ]
    assert {(a.status_code, a.text) for a in answers} == {(answers[0].status_code, answers[0].text)}
    assert answers[0].status_code == 202
    with db.read() as conn:
        messages = mail.outbox(conn)
    assert [m.to for m in messages] == [email, email]
    assert all("http://testserver/password/reset/" in m.body for m in messages)


def test_reset_sets_the_password_once(db, client, world):
    email = make_user(db, "affiliate", world.affiliate_id, "anna@example.com")
    client.post(f"{API}/password/forgot", json={"email": email})
    with db.read() as conn:
        (message,) = mail.outbox(conn)
    token = re.search(r"/password/reset/(\S+)", message.body).group(1)
    before = _without_attempts(db)
    r = client.post(f"{API}/password/reset", json={"token": token, "password": "short"})
    assert_error(r, 400, "password")
    assert _without_attempts(db) == before  # the token still works
    r = client.post(f"{API}/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    assert _actions(db, "user.reset_password")
    r = client.post(f"{API}/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert_error(r, 400, "token")
    assert_error(
        client.post(f"{API}/password/reset", json={"token": "x", "password": NEW_PASSWORD}),
        400,
        "token",
    )
    assert login(client, email, PASSWORD).status_code == 400
    client.cookies.clear()
    assert login(client, email, NEW_PASSWORD).status_code == 303


# --- the team ------------------------------------------------------------------------


def test_owners_invite_and_change_roles_like_the_portal(db, client, world):
    owner_key = _user_key(db, "merchant", world.merchant_id, "owner@example.com")
    owner = bearer(owner_key)
    r = client.post(
        f"{API}/team",
        json={"email": "Ana@Example.com", "name": "Ana", "member_role": "analyst"},
        headers=owner,
    )
    assert r.status_code == 201, r.text
    ana = r.json()
    assert (ana["email"], ana["member_role"], ana["status"]) == (
        "ana@example.com",
        "analyst",
        "active",
    )
    with db.read() as conn:
        (invitation,) = mail.outbox(conn, to="ana@example.com")
    link = re.search(r"http://testserver(/password/reset/\S+)", invitation.body).group(1)
    assert post_form(client, link, link, {"password": NEW_PASSWORD}).status_code == 303
    (entry,) = _actions(db, "merchant.add_member")
    assert entry.detail == {"member_role": "analyst"}

    team = client.get(f"{API}/team", headers=owner).json()
    assert [m["email"] for m in team] == ["owner@example.com", "ana@example.com"]
    r = client.patch(f"{API}/team/{ana['id']}", json={"member_role": "manager"}, headers=owner)
    assert r.status_code == 200 and r.json()["member_role"] == "manager"
    # An owner cannot demote or disable themselves; the refusal changes nothing.
    me = team[0]["id"]
    before = snapshot(db)
    assert_error(
        client.patch(f"{API}/team/{me}", json={"member_role": "analyst"}, headers=owner), 409
    )
    assert_error(client.patch(f"{API}/team/{me}", json={"status": "disabled"}, headers=owner), 409)
    for body, field in (
        ({"email": "x@example.com", "member_role": "boss"}, "member_role"),
        ({"email": "nope"}, "email"),
    ):
        assert_error(client.post(f"{API}/team", json=body, headers=owner), 400, field)
    assert_error(client.post(f"{API}/team", json={"email": "ana@example.com"}, headers=owner), 409)
    assert_error(
        client.patch(f"{API}/team/{ana['id']}", json={"status": "gone"}, headers=owner),
        400,
        "status",
    )
    # Another merchant's user is not found, and neither is an affiliate's.
    other = make_user(db, "merchant", world.other_program.merchant_id, "b@example.com")
    aff = make_user(db, "affiliate", world.affiliate_id, "aff@example.com")
    with db.read() as conn:
        for email in (other, aff):
            uid = find_user(conn, email).id
            r = client.patch(f"{API}/team/{uid}", json={"member_role": "owner"}, headers=owner)
            assert_error(r, 404)
    before.pop("users")
    after = snapshot(db)
    after.pop("users")
    assert after == before


def test_only_owners_keys_manage_the_team_and_everyone_in_it_reads(db, client, world):
    _user_key(db, "merchant", world.merchant_id, "owner@example.com")
    manager = _user_key(db, "merchant", world.merchant_id, "m@example.com", member_role="manager")
    analyst = _user_key(db, "merchant", world.merchant_id, "a@example.com", member_role="analyst")
    with db.read() as conn:
        analyst_id = find_user(conn, "a@example.com").id
    before = snapshot(db)
    for key in (manager, analyst, world.merchant_key):  # the last: a key of no user
        team = client.get(f"{API}/team", headers=bearer(key))
        assert team.status_code == 200 and len(team.json()) == 3
        r = client.post(f"{API}/team", json={"email": "new@example.com"}, headers=bearer(key))
        assert_error(r, 403)
        r = client.patch(
            f"{API}/team/{analyst_id}", json={"member_role": "owner"}, headers=bearer(key)
        )
        assert_error(r, 403)
    assert snapshot(db) == before
    op = bearer(world.operator_key)
    assert len(client.get(f"{API}/team?merchant_id={world.merchant_id}", headers=op).json()) == 3
    assert_error(client.get(f"{API}/team", headers=op), 400, "merchant_id")
    assert_error(client.get(f"{API}/team?merchant_id=999999", headers=op), 404)
    other = world.other_program.merchant_id
    assert_error(client.get(f"{API}/team?merchant_id={other}", headers=bearer(manager)), 404)


def test_disabling_a_member_stops_their_keys_but_not_program_keys(db, client, world):
    owner = bearer(_user_key(db, "merchant", world.merchant_id, "owner@example.com"))
    manager = _user_key(db, "merchant", world.merchant_id, "m@example.com", member_role="manager")
    r = client.post(
        f"{API}/keys",
        json={"role": "program", "owner_id": world.program.id, "name": "shop"},
        headers=bearer(manager),
    )
    program_key = r.json()["key"]
    with db.read() as conn:
        manager_id = find_user(conn, "m@example.com").id
    r = client.patch(f"{API}/team/{manager_id}", json={"status": "disabled"}, headers=owner)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    assert_error(client.get(f"{API}/me", headers=bearer(manager)), 401)
    # The shop's conversions do not stop with the person who made its key.
    assert client.get(f"{API}/me", headers=bearer(program_key)).json()["role"] == "program"
    r = client.patch(f"{API}/team/{manager_id}", json={"status": "active"}, headers=owner)
    assert client.get(f"{API}/me", headers=bearer(manager)).status_code == 200


# --- one's keys ----------------------------------------------------------------------


def test_keys_list_shows_ones_own_keys_and_never_a_secret(db, client, world):
    mine = _user_key(db, "affiliate", world.affiliate_id, "anna@example.com")
    login(client, "anna@example.com")
    r = post_form(client, "/account/keys", "/account/keys", {"name": "portal key"})
    portal_key = re.search(r'<code class="copy">([^<]+)</code>', r.text).group(1)
    theirs = _user_key(db, "affiliate", world.affiliate_id, "bob@example.com")
    r = client.get(f"{API}/keys", headers=bearer(mine))
    assert r.status_code == 200
    listed = r.json()
    assert [k["name"] for k in listed] == ["portal key", "anna@example.com key"]
    for raw in (mine, portal_key, theirs, world.affiliate_key):
        assert raw not in r.text
    assert {k["prefix"] for k in listed} == {mine[:10], portal_key[:10]}
    assert set(listed[0]) == {
        "id",
        "prefix",
        "role",
        "owner_id",
        "name",
        "user_id",
        "created_at",
        "revoked_at",
    }
    # A key of no user (CLI, operator) sees only itself; the operator sees every key.
    alone = client.get(f"{API}/keys", headers=bearer(world.affiliate_key)).json()
    assert [k["prefix"] for k in alone] == [world.affiliate_key[:10]]
    everything = client.get(f"{API}/keys", headers=bearer(world.operator_key))
    with db.read() as conn:
        assert len(everything.json()) == len(conn.execute(select(t.api_keys.c.id)).all())
    assert world.operator_key not in everything.text


def test_one_user_cannot_revoke_anothers_key(db, client, world):
    mine = _user_key(db, "affiliate", world.affiliate_id, "anna@example.com")
    theirs = _user_key(db, "affiliate", world.affiliate_id, "bob@example.com")
    with db.read() as conn:
        ids = {
            raw: conn.execute(
                select(t.api_keys.c.id).where(t.api_keys.c.key_hash == keys.hash_key(raw))
            ).scalar_one()
            for raw in (mine, theirs, world.affiliate_key, world.program_key)
        }
    before = snapshot(db)
    for target in (theirs, world.affiliate_key, world.program_key):
        assert_error(client.delete(f"{API}/keys/{ids[target]}", headers=bearer(mine)), 404)
    assert_error(client.delete(f"{API}/keys/999999", headers=bearer(mine)), 404)
    assert snapshot(db) == before
    assert client.delete(f"{API}/keys/{ids[mine]}", headers=bearer(mine)).status_code == 204
    assert_error(client.get(f"{API}/me", headers=bearer(mine)), 401)
    assert client.get(f"{API}/me", headers=bearer(theirs)).status_code == 200
    # The operator revokes any key; a second revocation changes nothing.
    op = bearer(world.operator_key)
    assert client.delete(f"{API}/keys/{ids[theirs]}", headers=op).status_code == 204
    with db.read() as conn:
        first = conn.execute(select(t.api_keys.c.revoked_at).where(t.api_keys.c.id == ids[theirs]))
        first = first.scalar_one()
    assert client.delete(f"{API}/keys/{ids[theirs]}", headers=op).status_code == 204
    with db.read() as conn:
        again = conn.execute(select(t.api_keys.c.revoked_at).where(t.api_keys.c.id == ids[theirs]))
        assert again.scalar_one() == first
    assert [e.target for e in _actions(db, "api_key.revoke")] == [
        f"key:{ids[theirs]}",
        f"key:{ids[mine]}",
    ]


def test_keys_made_through_a_users_key_are_that_users(db, client, world):
    owner = _user_key(db, "merchant", world.merchant_id, "owner@example.com")
    body = {"role": "program", "owner_id": world.program.id, "name": "shop backend"}
    r = client.post(f"{API}/keys", json=body, headers=bearer(owner))
    assert r.status_code == 201 and set(r.json()) == {"key", "role", "owner_id"}
    names = [k["name"] for k in client.get(f"{API}/keys", headers=bearer(owner)).json()]
    assert names == ["shop backend", "owner@example.com key"]
    # Made through a key of no user, it belongs to no user, as before.
    r = client.post(f"{API}/keys", json=body, headers=bearer(world.merchant_key))
    assert r.status_code == 201
    with db.read() as conn:
        row = conn.execute(
            select(t.api_keys).where(t.api_keys.c.key_hash == keys.hash_key(r.json()["key"]))
        ).one()
    assert row.user_id is None


# --- the operator's approvals and bans -----------------------------------------------


def test_operator_bans_and_reinstates_an_affiliate_with_a_reason(db, client, world):
    op = bearer(world.operator_key)
    url = f"{API}/affiliates/{world.affiliate_id}/status"
    before = snapshot(db)
    assert_error(client.patch(url, json={"status": "banned"}, headers=op), 400, "reason")
    assert_error(client.patch(url, json={"status": "active"}, headers=op), 409)
    assert_error(client.patch(url, json={"status": "pending", "reason": "x"}, headers=op), 409)
    assert_error(
        client.patch(f"{API}/affiliates/999999/status", json={"status": "active"}, headers=op),
        404,
    )
    assert snapshot(db) == before
    r = client.patch(url, json={"status": "banned", "reason": "cookie stuffing"}, headers=op)
    assert r.status_code == 200 and r.json()["status"] == "banned"
    assert_error(client.get(f"{API}/me", headers=bearer(world.affiliate_key)), 401)
    r = client.patch(url, json={"status": "active", "reason": "appeal upheld"}, headers=op)
    assert r.status_code == 200
    assert client.get(f"{API}/me", headers=bearer(world.affiliate_key)).status_code == 200
    (ban,) = _actions(db, "affiliate.banned")
    assert ban.detail == {"reason": "cookie stuffing", "was": "active"}
    (back,) = _actions(db, "affiliate.active")
    assert back.detail == {"reason": "appeal upheld", "was": "banned"}
