"""Affiliate postbacks in the portal and the API: templates, test postbacks, the log, tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from factories.http import API, assert_error, bearer, snapshot
from factories.portal import csrf_of, login, make_user, post_form
from factories.postbacks import allow_loopback, app_client, deliveries, query, sale_for, set_url
from factories.receiver import Receiver, receiver
from factories.world import World, make_world
from tuike.services import postbacks as svc
from tuike.storage import tables as t

# --- fixtures ----------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


@pytest.fixture
def allowed(settings: Any) -> Any:
    """Settings that let postbacks reach the receiver on loopback."""
    return allow_loopback(settings)


@pytest.fixture
def server() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def open_client(db: Any, allowed: Any) -> Iterator[Any]:
    """A client of an application whose postbacks may reach loopback."""
    with app_client(db, allowed) as c:
        yield c


# --- the portal ------------------------------------------------------------------------


def test_portal_sets_templates_and_test_fires(db, open_client, world, server):
    c = open_client
    login(c, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    page = c.get("/affiliate/postbacks")
    assert page.status_code == 200
    assert 'href="/affiliate/postbacks"' in page.text and "{aff_click_id}" in page.text
    before = snapshot(db)
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks",
        {"program_id": "0", "url_template": "https://pb.example/?x={nope}"},
    )
    assert r.status_code == 400 and "unknown macro {nope}" in r.text
    assert snapshot(db) == before
    server.body = b"hello postback"
    template = server.url("/pb") + "?o={order_id}&p={payout}"
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks",
        {"program_id": "0", "url_template": template},
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert 'data-testid="flash"' in page.text and "{order_id}" in page.text
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks",
        {"program_id": str(world.program.id), "url_template": server.url("/program")},
    )
    assert r.status_code == 303
    assert server.url("/program") in c.get("/affiliate/postbacks").text

    r = post_form(c, "/affiliate/postbacks", "/affiliate/postbacks/test", {"program_id": "0"})
    assert r.status_code == 200
    assert 'data-testid="test-result"' in r.text
    assert 'data-testid="test-code">200<' in r.text and "hello postback" in r.text
    (got,) = server.requests
    assert query(got.path)["o"].startswith("TEST-") and query(got.path)["p"] == "1.00"
    (d,) = deliveries(db, world.affiliate_id)
    assert d.is_test and d.status == "delivered" and d.conversion_id is None
    assert f'data-delivery="{d.id}"' in r.text

    # A URL tried without saving it, which the guard refuses: the reason is shown.
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks/test",
        {"program_id": "0", "url_template": "http://169.254.169.254/latest/meta-data/"},
    )
    assert r.status_code == 200 and "169.254.169.254 is a link-local address" in r.text
    assert len(server.requests) == 1

    r = post_form(c, "/affiliate/postbacks", f"/affiliate/postbacks/{world.program.id}/delete", {})
    assert r.status_code == 303
    assert server.url("/program") not in c.get("/affiliate/postbacks").text


def test_portal_test_fire_to_loopback_is_refused_when_not_allowed(db, client, world, server):
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    set_url(db, world.affiliate_id, server.url("/pb"))
    r = post_form(client, "/affiliate/postbacks", "/affiliate/postbacks/test", {"program_id": "0"})
    assert r.status_code == 200
    assert "127.0.0.1 is a loopback address" in r.text
    assert server.requests == []
    assert deliveries(db, world.affiliate_id)[0].status == "refused"


def test_test_fires_are_limited_per_minute(db, client, world):
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    set_url(db, world.affiliate_id, "http://10.0.0.1/pb")  # refused at once: no network wait
    token = csrf_of(client.get("/affiliate/postbacks").text)
    codes = [
        client.post(
            "/affiliate/postbacks/test", data={"program_id": "0", "csrf": token}
        ).status_code
        for _ in range(svc.TESTS_PER_MINUTE + 1)
    ]
    assert codes == [200] * svc.TESTS_PER_MINUTE + [429]
    r = client.post(
        f"{API}/affiliates/{world.affiliate_id}/postbacks/test",
        json={},
        headers=bearer(world.affiliate_key),
    )
    assert_error(r, 429)


def test_affiliates_never_see_or_change_each_others_postbacks(db, client, world):
    set_url(db, world.affiliate_id, "https://pb.example/anna-secret")
    set_url(db, world.affiliate_id, "https://pb.example/anna-program", world.program.id)
    sale_for(client, world, "T-1")
    login(client, make_user(db, "affiliate", world.other_affiliate_id, "bob@example.com"))
    page = client.get("/affiliate/postbacks").text
    assert "anna-" not in page and 'data-delivery="' not in page
    before = snapshot(db)
    for program_id in (0, world.program.id):
        r = post_form(
            client, "/affiliate/postbacks", f"/affiliate/postbacks/{program_id}/delete", {}
        )
        assert r.status_code == 404
    assert snapshot(db) == before


# --- the API -----------------------------------------------------------------------------


def test_api_templates_test_and_deliveries(db, client, allowed, world, server):
    base = f"{API}/affiliates/{world.affiliate_id}"
    me = bearer(world.affiliate_key)
    before = snapshot(db)
    r = client.put(
        f"{base}/postbacks/0", json={"url_template": "https://pb.example/?a={x}"}, headers=me
    )
    assert_error(r, 400, "url_template")
    r = client.put(f"{base}/postbacks/0", json={"url_template": "x", "extra": 1}, headers=me)
    assert_error(r, 400)
    assert snapshot(db) == before
    with db.write() as conn:
        m = conn.execute(
            select(t.memberships.c.id).where(
                t.memberships.c.program_id == world.other_program.id,
                t.memberships.c.affiliate_id == world.affiliate_id,
            )
        ).scalar_one()
        conn.execute(update(t.memberships).where(t.memberships.c.id == m).values(status="banned"))
    before = snapshot(db)
    r = client.put(
        f"{base}/postbacks/{world.other_program.id}",
        json={"url_template": "https://pb.example/"},
        headers=me,
    )
    assert_error(r, 409)
    assert_error(client.delete(f"{base}/postbacks/0", headers=me), 404)
    assert snapshot(db) == before

    r = client.put(
        f"{base}/postbacks/0", json={"url_template": server.url("/pb") + "?s={status}"}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["program_id"] == 0 and r.json()["url_template"].endswith("?s={status}")
    r = client.put(
        f"{base}/postbacks/{world.program.id}",
        json={"url_template": server.url("/program")},
        headers=bearer(world.operator_key),  # the operator may act for an affiliate
    )
    assert r.status_code == 200, r.text
    listed = client.get(f"{base}/postbacks", headers=me).json()
    assert [u["program_id"] for u in listed] == [0, world.program.id]

    with app_client(db, allowed) as c:
        r = c.post(f"{base}/postbacks/test", json={"program_id": world.program.id}, headers=me)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["last_code"], r.json()["is_test"]) == (
        "delivered",
        200,
        True,
    )
    assert [q.path.split("?")[0] for q in server.requests] == ["/program"]

    sale_for(client, world, "API-1")
    log = client.get(f"{base}/postback-deliveries?limit=10", headers=me).json()
    assert [(d["status"], d["is_test"]) for d in log] == [("pending", False), ("delivered", True)]
    assert log[0]["url"] == server.url("/program") and log[0]["next_attempt_at"]

    # Affiliate B, merchants and program keys get 404 for A's postbacks and change nothing.
    before = snapshot(db)
    for key in (world.other_affiliate_key, world.merchant_key, world.program_key):
        h = bearer(key)
        assert_error(client.get(f"{base}/postbacks", headers=h), 404)
        assert_error(client.get(f"{base}/postback-deliveries", headers=h), 404)
        assert_error(
            client.put(
                f"{base}/postbacks/0", json={"url_template": "https://e.example/"}, headers=h
            ),
            404,
        )
        assert_error(client.delete(f"{base}/postbacks/0", headers=h), 404)
        assert_error(client.post(f"{base}/postbacks/test", json={}, headers=h), 404)
    assert snapshot(db) == before
    assert client.delete(f"{base}/postbacks/{world.program.id}", headers=me).status_code == 204
    assert [u["program_id"] for u in client.get(f"{base}/postbacks", headers=me).json()] == [0]
