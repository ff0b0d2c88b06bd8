"""Who sees and changes what over /api/v1: the authorization matrix (STYLE.md item 11)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from factories.http import assert_error, bearer, click, convert, memberships, snapshot
from factories.world import World, make_world
from tuike.storage import tables

API = "/api/v1"


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


@pytest.fixture
def traffic(client: Any, world: World) -> dict[str, Any]:
    """A conversion for each affiliate, each in its own program, and a coupon each."""
    conv_a = convert(
        client, world.program_key, "A-1", click(client, world.link.code), amount="100.00"
    )
    conv_b = convert(
        client,
        world.other_program_key,
        "B-1",
        click(client, world.other_link.code),
        amount="100.00",
    )
    r = client.post(
        f"{API}/coupons",
        json={"program_id": world.program.id, "affiliate_id": world.affiliate_id, "code": "ANNA"},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 201, r.text
    return {"a": conv_a, "b": conv_b}


def routes(w: World, other_membership: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route of the API with a plausible body."""
    p, q = w.program.id, w.other_program.id
    return [
        ("GET", "/me", None),
        ("GET", "/merchants", None),
        ("POST", "/merchants", {"name": "X"}),
        ("GET", "/programs", None),
        (
            "POST",
            "/programs",
            {"name": "X", "landing_url": "https://x.example/", "commission_plan": {}},
        ),
        ("GET", f"/programs/{p}", None),
        ("PATCH", f"/programs/{p}", {"name": "Renamed"}),
        ("GET", "/affiliates", None),
        ("POST", "/affiliates", {"name": "X", "email": "x@example.com"}),
        ("GET", f"/affiliates/{w.affiliate_id}", None),
        (
            "POST",
            f"/affiliates/{w.affiliate_id}/channels",
            {"kind": "blog", "name": "b", "url": "u"},
        ),
        ("GET", "/memberships", None),
        ("POST", f"/programs/{q}/memberships", {}),
        ("PATCH", f"/memberships/{other_membership}", {"status": "banned"}),
        ("GET", f"/programs/{p}/creatives", None),
        ("POST", f"/programs/{p}/creatives", {"kind": "text", "name": "T"}),
        ("GET", "/links", None),
        ("POST", "/links", {"program_id": p}),
        ("PATCH", f"/links/{w.link.id}", {"status": "paused"}),
        ("GET", "/coupons", None),
        ("POST", "/coupons", {"program_id": p, "affiliate_id": w.affiliate_id, "code": "NEW"}),
        ("GET", "/conversions", None),
        ("GET", "/conversions/01JD3Z0000000000000000000", None),
        ("POST", "/conversions", {"order_id": "X", "amount": "1.00"}),
        ("GET", "/reports", None),
        ("POST", "/keys", {"role": "operator", "name": "x"}),
    ]


# --- anonymous -----------------------------------------------------------------------


def test_every_route_needs_a_valid_key(db, client, world):
    mid = memberships(client, world.merchant_key)[0]["id"]
    before = snapshot(db)
    for method, path, body in routes(world, mid):
        for headers in ({}, bearer("tk_op_made-up"), {"Authorization": "Basic dXNlcjpwdw=="}):
            r = client.request(method, f"{API}{path}", json=body, headers=headers)
            assert_error(r, 401)
    assert snapshot(db) == before


# --- affiliates ----------------------------------------------------------------------


def test_affiliate_sees_only_their_own_data(client, world, traffic):
    key = world.affiliate_key
    links = client.get(f"{API}/links", headers=bearer(key)).json()
    assert {link["affiliate_id"] for link in links} == {world.affiliate_id}
    convs = client.get(f"{API}/conversions", headers=bearer(key)).json()
    assert [c["conversion_id"] for c in convs] == [traffic["a"]["conversion_id"]]
    r = client.get(f"{API}/conversions/{traffic['b']['conversion_id']}", headers=bearer(key))
    assert_error(r, 404)
    got = memberships(client, key)
    assert len(got) == 2 and {m["affiliate_id"] for m in got} == {world.affiliate_id}
    coupons = client.get(f"{API}/coupons", headers=bearer(key)).json()
    assert [c["code"] for c in coupons] == ["ANNA"]
    assert client.get(f"{API}/coupons", headers=bearer(world.other_affiliate_key)).json() == []
    rows = client.get(
        f"{API}/reports", params={"group_by": "affiliate,program"}, headers=bearer(key)
    ).json()["rows"]
    assert {r["affiliate"] for r in rows} == {world.affiliate_id}
    assert {r["program"] for r in rows} == {world.program.id}
    me = client.get(f"{API}/affiliates", headers=bearer(key)).json()
    assert [(a["id"], a["email"]) for a in me] == [(world.affiliate_id, "aff1@example.com")]
    assert_error(
        client.get(f"{API}/affiliates/{world.other_affiliate_id}", headers=bearer(key)), 404
    )
    # The program directory is public to affiliates, its secrets are not.
    programs = client.get(f"{API}/programs", headers=bearer(key)).json()
    assert {p["id"] for p in programs} == {world.program.id, world.other_program.id}
    assert all(p["postback_secret"] is None for p in programs)


def test_affiliate_denied_writes_change_nothing(db, client, world, traffic):
    key = world.affiliate_key
    own_membership = memberships(client, key, program_id=world.program.id)[0]["id"]
    before = snapshot(db)
    for method, path, body, status in [
        ("PATCH", f"/links/{world.other_link.id}", {"status": "paused"}, 404),
        ("PATCH", f"/memberships/{own_membership}", {"status": "approved", "group": "vip"}, 404),
        ("PATCH", f"/programs/{world.program.id}", {"cookie_days": 365}, 404),
        ("POST", f"/programs/{world.program.id}/creatives", {"kind": "text", "name": "T"}, 404),
        (
            "POST",
            "/coupons",
            {"program_id": world.program.id, "affiliate_id": world.affiliate_id, "code": "MINE"},
            404,
        ),
        (
            "POST",
            f"/affiliates/{world.other_affiliate_id}/channels",
            {"kind": "blog", "name": "x", "url": "y"},
            404,
        ),
        (
            "POST",
            "/programs",
            {"name": "X", "landing_url": "https://x.example/", "commission_plan": {}},
            403,
        ),
        ("POST", "/merchants", {"name": "X"}, 403),
        ("POST", "/affiliates", {"name": "X", "email": "x@example.com"}, 403),
        ("POST", "/keys", {"role": "affiliate", "owner_id": world.affiliate_id}, 403),
        ("POST", "/conversions", {"order_id": "SELF", "amount": "1.00"}, 403),
        ("GET", "/merchants", None, 403),
    ]:
        assert_error(client.request(method, f"{API}{path}", json=body, headers=bearer(key)), status)
    assert snapshot(db) == before
    # The other affiliate's link still takes traffic.
    assert client.get(f"/c/{world.other_link.code}").status_code == 302


def test_affiliate_creates_links_only_for_themselves(db, client, world):
    r = client.post(
        f"{API}/links",
        json={"program_id": world.program.id, "affiliate_id": world.other_affiliate_id},
        headers=bearer(world.affiliate_key),
    )
    assert r.status_code == 201, r.text
    assert r.json()["affiliate_id"] == world.affiliate_id
    with db.read() as conn:
        owner = conn.execute(
            select(tables.links.c.affiliate_id).where(tables.links.c.id == r.json()["id"])
        ).scalar_one()
    assert owner == world.affiliate_id


# --- merchants -----------------------------------------------------------------------


def test_merchant_sees_only_their_programs_and_traffic(client, world, traffic):
    key = world.merchant_key
    programs = client.get(f"{API}/programs", headers=bearer(key)).json()
    assert [p["id"] for p in programs] == [world.program.id]
    assert programs[0]["postback_secret"]
    assert_error(client.get(f"{API}/programs/{world.other_program.id}", headers=bearer(key)), 404)
    convs = client.get(f"{API}/conversions", headers=bearer(key)).json()
    assert [c["conversion_id"] for c in convs] == [traffic["a"]["conversion_id"]]
    r = client.get(f"{API}/conversions/{traffic['b']['conversion_id']}", headers=bearer(key))
    assert_error(r, 404)
    links = client.get(f"{API}/links", headers=bearer(key)).json()
    assert {link["program_id"] for link in links} == {world.program.id}
    assert memberships(client, key, program_id=world.other_program.id) == []
    assert {m["program_id"] for m in memberships(client, key)} == {world.program.id}
    rows = client.get(f"{API}/reports", params={"group_by": "program"}, headers=bearer(key))
    assert [r["program"] for r in rows.json()["rows"]] == [world.program.id]
    # Affiliates working with the merchant, without their email addresses.
    affs = client.get(f"{API}/affiliates", headers=bearer(key)).json()
    assert {a["id"] for a in affs} == {world.affiliate_id, world.other_affiliate_id}
    assert all(a["email"] is None for a in affs)
    one = client.get(f"{API}/affiliates/{world.affiliate_id}", headers=bearer(key)).json()
    assert one["email"] is None and one["name"] == "Affiliate 1"
    merchants = client.get(f"{API}/merchants", headers=bearer(key)).json()
    assert [m["id"] for m in merchants] == [world.merchant_id]


def test_merchant_denied_writes_change_nothing(db, client, world, traffic):
    key = world.merchant_key
    (foreign_membership,) = [
        m["id"]
        for m in memberships(client, world.operator_key, program_id=world.other_program.id)
        if m["affiliate_id"] == world.affiliate_id
    ]
    before = snapshot(db)
    q = world.other_program.id
    for method, path, body, status in [
        ("PATCH", f"/programs/{q}", {"status": "paused"}, 404),
        ("PATCH", f"/memberships/{foreign_membership}", {"status": "banned"}, 404),
        ("PATCH", f"/links/{world.other_link.id}", {"status": "paused"}, 404),
        ("POST", f"/programs/{q}/creatives", {"kind": "text", "name": "T"}, 404),
        (
            "POST",
            "/coupons",
            {"program_id": q, "affiliate_id": world.affiliate_id, "code": "STEAL"},
            404,
        ),
        ("POST", "/keys", {"role": "program", "owner_id": q}, 404),
        ("POST", "/keys", {"role": "operator"}, 404),
        ("POST", "/keys", {"role": "merchant", "owner_id": world.merchant_id}, 404),
        ("POST", f"/programs/{q}/memberships", {"affiliate_id": world.affiliate_id}, 403),
        (
            "POST",
            "/links",
            {"program_id": world.program.id, "affiliate_id": world.affiliate_id},
            403,
        ),
        ("POST", "/merchants", {"name": "X"}, 403),
        ("POST", "/affiliates", {"name": "X", "email": "x@example.com"}, 403),
        ("POST", "/conversions", {"order_id": "M", "amount": "1.00"}, 403),
    ]:
        assert_error(client.request(method, f"{API}{path}", json=body, headers=bearer(key)), status)
    assert snapshot(db) == before
    assert client.get(f"/c/{world.other_link.code}").status_code == 302


def test_merchant_creates_programs_and_keys_only_for_themselves(db, client, world):
    other_merchant = world.other_program.merchant_id
    r = client.post(
        f"{API}/programs",
        json={
            "merchant_id": other_merchant,
            "name": "Mine",
            "landing_url": "https://mine.example.com/",
            "commission_plan": {"cps_percent": "7"},
        },
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 201, r.text
    assert r.json()["merchant_id"] == world.merchant_id
    r = client.post(
        f"{API}/keys",
        json={"role": "program", "owner_id": r.json()["id"], "name": "server"},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 201, r.text
    me = client.get(f"{API}/me", headers=bearer(r.json()["key"])).json()
    assert me["role"] == "program"


def test_program_key_only_sends_conversions_for_its_program(db, client, world):
    key = world.program_key
    programs = client.get(f"{API}/programs", headers=bearer(key)).json()
    assert [p["id"] for p in programs] == [world.program.id]
    assert_error(client.get(f"{API}/programs/{world.other_program.id}", headers=bearer(key)), 404)
    before = snapshot(db)
    for method, path, body, status in [
        ("GET", "/coupons", None, 403),
        (
            "POST",
            "/links",
            {"program_id": world.program.id, "affiliate_id": world.affiliate_id},
            403,
        ),
        (
            "POST",
            "/programs",
            {"name": "X", "landing_url": "https://x.example/", "commission_plan": {}},
            403,
        ),
        ("PATCH", f"/programs/{world.program.id}", {"status": "paused"}, 404),
        ("POST", "/keys", {"role": "program", "owner_id": world.program.id}, 403),
    ]:
        assert_error(client.request(method, f"{API}{path}", json=body, headers=bearer(key)), status)
    assert snapshot(db) == before


def test_operator_sees_everything(client, world, traffic):
    key = world.operator_key
    programs = client.get(f"{API}/programs", headers=bearer(key)).json()
    assert {p["id"] for p in programs} == {world.program.id, world.other_program.id}
    convs = client.get(f"{API}/conversions", headers=bearer(key)).json()
    assert len(convs) == 2
    affs = client.get(f"{API}/affiliates", headers=bearer(key)).json()
    assert {a["email"] for a in affs} == {"aff1@example.com", "aff2@example.com"}
