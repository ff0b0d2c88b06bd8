"""Provisioning over /api/v1 (spec section 7): from an empty install to the first click."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from factories.http import assert_error, bearer, memberships, snapshot
from factories.world import World, make_world
from tuike.storage import tables

API = "/api/v1"


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


# --- provisioning --------------------------------------------------------------------


def test_provisioning_flow_from_operator_to_first_click(db, client, world):
    op = bearer(world.operator_key)
    merchant = client.post(f"{API}/merchants", json={"name": "Tea House"}, headers=op)
    assert merchant.status_code == 201, merchant.text
    mid = merchant.json()["id"]
    affiliate = client.post(
        f"{API}/affiliates",
        json={
            "name": "Lin",
            "email": "Lin@Example.com",
            "channels": [{"kind": "im", "name": "Tea lovers group", "url": "wechat:tea"}],
        },
        headers=op,
    )
    assert affiliate.status_code == 201, affiliate.text
    aid = affiliate.json()["id"]
    assert affiliate.json()["email"] == "lin@example.com"
    mkey = client.post(
        f"{API}/keys", json={"role": "merchant", "owner_id": mid, "name": "m"}, headers=op
    ).json()["key"]
    akey = client.post(
        f"{API}/keys", json={"role": "affiliate", "owner_id": aid, "name": "a"}, headers=op
    ).json()["key"]

    program = client.post(
        f"{API}/programs",
        json={
            "name": "Tea CPS",
            "currency": "CNY",
            "landing_url": "https://tea.example.com/?src=aff",
            "allowed_domains": ["tea.example.com", "m.tea.example.cn"],
            "cookie_days": 14,
            "commission_plan": {"cps_percent": "15", "fixed": {"lead": "2.00"}},
        },
        headers=bearer(mkey),
    )
    assert program.status_code == 201, program.text
    pid = program.json()["id"]
    assert program.json()["merchant_id"] == mid
    assert program.json()["commission_plan"]["cps_percent"] == "15"

    creative = client.post(
        f"{API}/programs/{pid}/creatives",
        json={
            "kind": "banner",
            "name": "Autumn",
            "image_url": "https://cdn.example/a.png",
            "landing_url": "https://tea.example.com/autumn",
            "width": 300,
            "height": 250,
        },
        headers=bearer(mkey),
    )
    assert creative.status_code == 201, creative.text
    assert [
        c["name"]
        for c in client.get(f"{API}/programs/{pid}/creatives", headers=bearer(akey)).json()
    ] == ["Autumn"]

    # Not approved yet: no link.
    r = client.post(f"{API}/links", json={"program_id": pid}, headers=bearer(akey))
    assert_error(r, 409)
    applied = client.post(f"{API}/programs/{pid}/memberships", json={}, headers=bearer(akey))
    assert applied.status_code == 201, applied.text
    assert applied.json()["status"] == "applied"
    assert_error(
        client.post(f"{API}/programs/{pid}/memberships", json={}, headers=bearer(akey)), 409
    )
    pending = memberships(client, mkey, status="applied")
    assert [m["affiliate_id"] for m in pending] == [aid]
    approved = client.patch(
        f"{API}/memberships/{applied.json()['id']}",
        json={"status": "approved"},
        headers=bearer(mkey),
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    before = snapshot(db)
    for bad in (
        "https://evil.example.com/tea",
        "https://tea.example.com.evil.com/",
        "javascript:alert(1)",
    ):
        r = client.post(
            f"{API}/links", json={"program_id": pid, "landing_url": bad}, headers=bearer(akey)
        )
        assert_error(r, 400)
        assert r.json()["error"]["field"] == "landing_url"
    r = client.post(
        f"{API}/links", json={"program_id": pid, "sub1": "x" * 256}, headers=bearer(akey)
    )
    assert_error(r, 400)
    assert snapshot(db) == before

    link = client.post(
        f"{API}/links",
        json={
            "program_id": pid,
            "landing_url": "https://m.tea.example.cn/oolong?id=7",
            "sub1": "group-a",
            "sub2": "autumn",
        },
        headers=bearer(akey),
    )
    assert link.status_code == 201, link.text
    body = link.json()
    assert (body["sub1"], body["sub2"], body["affiliate_id"]) == ("group-a", "autumn", aid)
    assert body["url"] == f"http://testserver/c/{body['code']}"
    assert len(body["code"]) >= 7
    banner_link = client.post(
        f"{API}/links",
        json={"program_id": pid, "creative_id": creative.json()["id"]},
        headers=bearer(akey),
    )
    assert banner_link.status_code == 201
    assert banner_link.json()["landing_url"] == "https://tea.example.com/autumn"

    r = client.get(urlsplit(body["url"]).path)
    assert r.status_code == 302
    loc = urlsplit(r.headers["location"])
    assert (loc.netloc, loc.path) == ("m.tea.example.cn", "/oolong")
    assert parse_qs(loc.query)["id"] == ["7"]
    with db.read() as conn:
        row = conn.execute(select(tables.clicks)).one()
    assert (row.affiliate_id, row.sub1, row.sub2) == (aid, "group-a", "autumn")
    r = client.get(urlsplit(banner_link.json()["url"]).path)
    assert r.headers["location"].startswith("https://tea.example.com/autumn?tk_click=")
    with db.read() as conn:
        creative_ids = conn.execute(select(tables.clicks.c.creative_id).order_by("id")).scalars()
        assert list(creative_ids) == [None, creative.json()["id"]]


def test_openapi_lists_the_api(client):
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in [
        "/api/v1/merchants",
        "/api/v1/programs",
        "/api/v1/programs/{program_id}",
        "/api/v1/affiliates",
        "/api/v1/affiliates/{affiliate_id}",
        "/api/v1/programs/{program_id}/memberships",
        "/api/v1/memberships",
        "/api/v1/memberships/{membership_id}",
        "/api/v1/programs/{program_id}/creatives",
        "/api/v1/links",
        "/api/v1/links/{link_id}",
        "/api/v1/coupons",
        "/api/v1/conversions",
        "/api/v1/conversions/{conversion_id}",
        "/api/v1/reports",
        "/api/v1/keys",
        "/c/{code}",
        "/pb",
        "/px.gif",
    ]:
        assert path in paths, path
    assert "post" in paths["/api/v1/conversions"]
    assert "patch" in paths["/api/v1/memberships/{membership_id}"]


# --- provisioning input that must be refused, not crash ------------------------------


def test_bad_provisioning_input_is_refused_and_changes_nothing(db, client, world):
    op, mk, ak = bearer(world.operator_key), bearer(world.merchant_key), bearer(world.affiliate_key)
    mid = memberships(client, world.merchant_key, program_id=world.program.id)[0]["id"]
    p = world.program.id
    plan = {"cps_percent": "5"}
    before = snapshot(db)
    for method, path, body, headers, status, field in [
        ("POST", "/affiliates", {"name": "Again", "email": "aff1@example.com"}, op, 409, None),
        ("POST", "/affiliates", {"name": "Again", "email": " AFF1@Example.COM "}, op, 409, None),
        ("POST", "/affiliates", {"name": "N\x00", "email": "n@example.com"}, op, 400, "name"),
        ("POST", "/affiliates", {"name": "N", "email": "n\x00@example.com"}, op, 400, "email"),
        ("POST", "/merchants", {"name": "Tea\x00House"}, op, 400, "name"),
        (
            "POST",
            "/programs",
            {"name": "P\x00", "landing_url": "https://p.example/", "commission_plan": plan},
            mk,
            400,
            "name",
        ),
        (
            "POST",
            "/programs",
            {
                "name": "P",
                "landing_url": "https://p.example/",
                "commission_plan": plan,
                "category": "tea\x00",
            },
            mk,
            400,
            "category",
        ),
        ("PATCH", f"/programs/{p}", {"allowed_domains": None}, mk, 400, "allowed_domains"),
        ("PATCH", f"/programs/{p}", {"timezone": None}, mk, 400, "timezone"),
        ("PATCH", f"/programs/{p}", {"timezone": "Mars/Base"}, mk, 400, "timezone"),
        ("PATCH", f"/programs/{p}", {"landing_url": "https://[::1"}, mk, 400, "landing_url"),
        ("PATCH", f"/programs/{p}", {"currency": "USD"}, mk, 400, "currency"),
        (
            "PATCH",
            f"/memberships/{mid}",
            {"status": "approved", "group": "v\x00"},
            mk,
            400,
            "group",
        ),
        ("POST", "/links", {"program_id": p, "sub1": "a\x00b"}, ak, 400, "sub1"),
        ("POST", "/links", {"program_id": p, "sub3": "x" * 256}, ak, 400, "sub3"),
    ]:
        r = client.request(method, f"{API}{path}", json=body, headers=headers)
        assert_error(r, status)
        assert r.json()["error"].get("field") == field, (path, body, r.text)
    assert snapshot(db) == before


def test_ids_out_of_the_64_bit_range_are_not_found(client, world):
    huge = 2**64
    for path in (f"/programs/{huge}", f"/affiliates/{huge}", f"/links/{huge}"):
        r = client.request(
            "PATCH" if "links" in path else "GET",
            f"{API}{path}",
            json={"status": "paused"} if "links" in path else None,
            headers=bearer(world.operator_key),
        )
        assert r.status_code in (400, 404), r.text
