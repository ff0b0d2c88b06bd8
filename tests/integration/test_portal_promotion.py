"""Merchant tools in the console: creatives (uploads checked, HTML sanitised), coupons,
groups with their own rates, invitation links and announcements; and what affiliates see."""

from __future__ import annotations

import html
import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from factories.http import bearer, click, convert, snapshot
from factories.portal import PASSWORD, csrf_of, login, make_user, post_form
from factories.world import make_world
from tuike.storage import tables as t

INVITE = re.compile(r"http://testserver/join/([A-Za-z0-9_-]+)")


@pytest.fixture
def app_client(client):
    """Make more browsers of the same application (each with its own cookies)."""
    return lambda: TestClient(client.app, follow_redirects=False)


def _png(width: int, height: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def _merchant(db, client, **extra):
    world = make_world(db)
    login(client, make_user(db, "merchant", world.merchant_id, "boss@example.com", **extra))
    return world


def _upload(client, world, data: bytes, filename="b.png", **fields):
    page = client.get(f"/merchant/programs/{world.program.id}/creatives")
    return client.post(
        f"/merchant/programs/{world.program.id}/creatives",
        data={"kind": "banner", "name": "Winter sale", "csrf": csrf_of(page.text), **fields},
        files={"file": (filename, data, "image/png")},
    )


def test_banner_upload_is_checked_stored_and_served(db, client):
    world = _merchant(db, client)
    r = _upload(client, world, _png(300, 250))
    assert r.status_code == 303
    page = client.get(f"/merchant/programs/{world.program.id}/creatives").text
    assert "300×250" in page and "Medium Rectangle" in page
    with db.read() as conn:
        creative = conn.execute(select(t.creatives)).one()
    assert creative.kind == "banner" and (creative.width, creative.height) == (300, 250)
    image = client.get(creative.image_url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(image.content)).size == (300, 250)
    again = client.get(creative.image_url, headers={"If-None-Match": image.headers["etag"]})
    assert again.status_code == 304
    # the wrong extension is not the file
    assert client.get(creative.image_url.replace(".png", ".gif")).status_code == 404


def test_bad_banners_are_refused_with_the_reason_and_store_nothing(db, client, settings):
    world = _merchant(db, client)
    before = snapshot(db)
    cases = [
        (b"", "choose an image file"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "not a PNG, JPEG"),
        (b"GIF89a" + b"\0" * 50, "not a PNG, JPEG"),
        (_png(3001, 10), "each side must be 1 to 3000 pixels"),
        (b"\x89PNG" + b"0" * (settings.banner_max_bytes + 10), "banners may be at most"),
    ]
    for data, reason in cases:
        r = _upload(client, world, data)
        assert r.status_code == 400, reason
        assert reason in html.unescape(r.text)
    r = _upload(client, world, _png(300, 250), width="728", height="90")
    assert r.status_code == 400 and "not the stated 728×90" in html.unescape(r.text)
    assert snapshot(db) == before


def test_html_snippets_are_sanitised_and_filled_with_the_affiliate_link(db, client):
    world = _merchant(db, client)
    markup = (
        '<a href="{link}" onclick="steal()">Buy <b>now</b></a><script>alert(1)</script>'
        '<img src="javascript:alert(2)"><img src="https://cdn.example.com/x.png" style="x">'
        '<iframe src="https://evil.example/"></iframe>'
    )
    r = post_form(
        client,
        f"/merchant/programs/{world.program.id}/creatives",
        f"/merchant/programs/{world.program.id}/creatives",
        {"kind": "html", "name": "Snippet", "body": markup},
    )
    assert r.status_code == 303
    with db.read() as conn:
        body = conn.execute(select(t.creatives.c.body)).scalar_one()
    for bad in ("onclick", "<script", "javascript:", "style=", "<iframe", "alert"):
        assert bad not in body
    assert '<a href="{link}" rel="sponsored noopener">Buy <b>now</b></a>' in body
    # nothing safe left: refused
    r = post_form(
        client,
        f"/merchant/programs/{world.program.id}/creatives",
        f"/merchant/programs/{world.program.id}/creatives",
        {"kind": "html", "name": "Evil", "body": "<script>alert(1)</script>"},
    )
    assert r.status_code == 400 and "no HTML left" in r.text
    # the affiliate gallery fills in the tracking link
    client.cookies.clear()
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    page = html.unescape(client.get("/affiliate/links").text)
    assert f'<a href="http://testserver/c/{world.link.code}" rel="sponsored noopener">' in page


def test_archived_creatives_leave_the_gallery(db, client):
    world = _merchant(db, client)
    path = f"/merchant/programs/{world.program.id}/creatives"
    post_form(client, path, path, {"kind": "text", "name": "T", "body": "Shop the sale"})
    assert _upload(client, world, _png(728, 90)).status_code == 303
    with db.read() as conn:
        rows = conn.execute(select(t.creatives.c.id, t.creatives.c.image_url)).all()
    banner_id, image_url = next((r.id, r.image_url) for r in rows if r.image_url)
    r = post_form(client, path, f"/merchant/creatives/{banner_id}/status", {"status": "archived"})
    assert r.status_code == 303
    assert client.get(image_url).status_code == 404
    client.cookies.clear()
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    page = html.unescape(client.get("/affiliate/links").text)
    assert ">Shop the sale</a>" in page and image_url not in page


def test_coupons_are_given_to_approved_affiliates_and_revoked_codes_stop_attributing(db, client):
    world = _merchant(db, client)
    path = f"/merchant/programs/{world.program.id}/coupons"
    r = post_form(client, path, path, {"affiliate_id": str(world.affiliate_id), "code": "anna10"})
    assert r.status_code == 303
    page = client.get(path).text
    assert "ANNA10" in page
    before = snapshot(db)
    r = post_form(client, path, path, {"affiliate_id": str(world.affiliate_id), "code": "ANNA10"})
    assert r.status_code == 400 and "already exists" in r.text
    r = post_form(client, path, path, {"affiliate_id": str(world.affiliate_id), "code": "x"})
    assert r.status_code == 400
    assert snapshot(db) == before
    sale = convert(client, world.program_key, "C-1", coupon="anna10")
    assert sale["affiliate_id"] == world.affiliate_id
    with db.read() as conn:
        coupon_id = conn.execute(select(t.coupons.c.id)).scalar_one()
    r = post_form(client, path, f"/merchant/coupons/{coupon_id}/status", {"status": "revoked"})
    assert r.status_code == 303
    later = convert(client, world.program_key, "C-2", coupon="ANNA10")
    assert later["affiliate_id"] is None


def test_groups_pay_their_own_rates(db, client):
    world = _merchant(db, client)
    path = f"/merchant/programs/{world.program.id}/groups"
    before = snapshot(db)
    r = post_form(client, path, path, {"name": "KOL", "cps_percent": "250"})
    assert r.status_code == 400 and "between 0 and 100" in r.text
    r = post_form(client, path, path, {"name": "KOL"})
    assert r.status_code == 400 and "at least one rate" in r.text
    assert snapshot(db) == before
    r = post_form(client, path, path, {"name": "KOL", "cps_percent": "20"})
    assert r.status_code == 303
    page = client.get(path).text
    assert "KOL" in page and "20 %" in page
    # put the affiliate in the group through the affiliates page
    with db.read() as conn:
        membership_id = conn.execute(
            select(t.memberships.c.id).where(
                t.memberships.c.program_id == world.program.id,
                t.memberships.c.affiliate_id == world.affiliate_id,
            )
        ).scalar_one()
    r = post_form(
        client,
        "/merchant/affiliates",
        f"/merchant/memberships/{membership_id}",
        {"status": "approved", "group": "KOL"},
    )
    assert r.status_code == 303
    click_id = click(client, world.link.code)
    kol = convert(client, world.program_key, "G-1", click_id, amount="100.00")
    assert kol["commission"] == "20.00"
    r = post_form(client, path, f"{path}/delete", {"name": "KOL"})
    assert r.status_code == 303
    with db.read() as conn:
        group = conn.execute(
            select(t.memberships.c.group).where(t.memberships.c.id == membership_id)
        ).scalar_one()
    assert group == ""


def test_invitation_links_approve_in_their_group_until_used_up(db, client, app_client):
    world = _merchant(db, client)
    groups = f"/merchant/programs/{world.program.id}/groups"
    post_form(client, groups, groups, {"name": "VIP", "cps_percent": "12"})
    path = f"/merchant/programs/{world.program.id}/invites"
    r = post_form(client, path, path, {"group": "VIP", "max_uses": "1", "expires_days": "7"})
    assert r.status_code == 201
    token = INVITE.search(r.text).group(1)
    with db.read() as conn:
        stored = conn.execute(select(t.program_invites.c.token_hash)).scalar_one()
    assert token not in stored  # only the hash is kept
    # a newcomer signs up through the link and lands in the program, approved, in VIP
    newcomer = app_client()
    page = newcomer.get(f"/join/{token}")
    assert page.status_code == 200 and world.program.name in page.text
    signup = newcomer.get(f"/signup/affiliate?next=/join/{token}")
    r = newcomer.post(
        "/signup/affiliate",
        data={
            "name": "Newcomer",
            "email": "new@example.com",
            "password": PASSWORD,
            "channel_kind": "blog",
            "channel_name": "New blog",
            "channel_url": "https://blog.example.net/",
            "next": f"/join/{token}",
            "csrf": csrf_of(signup.text),
        },
    )
    assert r.status_code == 303 and r.headers["location"] == f"/join/{token}"
    r = post_form(newcomer, f"/join/{token}", f"/join/{token}", {})
    assert r.status_code == 303
    with db.read() as conn:
        m = conn.execute(
            select(t.memberships.c.status, t.memberships.c.group)
            .join(t.affiliates, t.affiliates.c.id == t.memberships.c.affiliate_id)
            .where(t.affiliates.c.email == "new@example.com")
        ).one()
    assert (m.status, m.group) == ("approved", "VIP")
    # used up: the next affiliate is refused and nothing changes
    other = app_client()
    login(other, make_user(db, "affiliate", world.other_affiliate_id, "bob@example.com"))
    assert other.get(f"/join/{token}").status_code == 404
    assert (
        other.post(
            f"/join/{token}", data={"csrf": csrf_of(other.get("/affiliate").text)}
        ).status_code
        == 404
    )
    # an open link can be revoked
    r = post_form(client, path, path, {})
    token2 = INVITE.search(r.text).group(1)
    with db.read() as conn:
        invite_id = conn.execute(
            select(t.program_invites.c.id).order_by(t.program_invites.c.id.desc())
        ).scalar()
    post_form(client, path, f"/merchant/invites/{invite_id}/revoke", {})
    assert other.get(f"/join/{token2}").status_code == 404


def test_banned_affiliates_cannot_come_back_through_an_invitation(db, client, app_client):
    world = _merchant(db, client)
    path = f"/merchant/programs/{world.program.id}/invites"
    token = INVITE.search(post_form(client, path, path, {}).text).group(1)
    with db.read() as conn:
        membership_id = conn.execute(
            select(t.memberships.c.id).where(
                t.memberships.c.program_id == world.program.id,
                t.memberships.c.affiliate_id == world.affiliate_id,
            )
        ).scalar_one()
    post_form(
        client,
        "/merchant/affiliates",
        f"/merchant/memberships/{membership_id}",
        {"status": "banned", "reason": "cookie stuffing"},
    )
    anna = app_client()
    login(anna, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    before = snapshot(db)
    r = post_form(anna, f"/join/{token}", f"/join/{token}", {})
    assert r.status_code == 400 and "banned" in r.text
    assert snapshot(db) == before


def test_announcements_reach_all_or_one_group(db, client, app_client):
    world = _merchant(db, client)
    groups = f"/merchant/programs/{world.program.id}/groups"
    post_form(client, groups, groups, {"name": "VIP", "cps_percent": "12"})
    with db.read() as conn:
        membership_id = conn.execute(
            select(t.memberships.c.id).where(
                t.memberships.c.program_id == world.program.id,
                t.memberships.c.affiliate_id == world.affiliate_id,
            )
        ).scalar_one()
    post_form(
        client,
        "/merchant/affiliates",
        f"/merchant/memberships/{membership_id}",
        {"status": "approved", "group": "VIP"},
    )
    path = f"/merchant/programs/{world.program.id}/announcements"
    before = snapshot(db)
    assert post_form(client, path, path, {"title": "", "body": "x"}).status_code == 400
    assert (
        post_form(client, path, path, {"title": "t", "body": "x", "group": "Nope"}).status_code
        == 400
    )
    assert snapshot(db) == before
    post_form(client, path, path, {"title": "Double 11 starts", "body": "Rates x2 <b>today</b>"})
    post_form(client, path, path, {"title": "VIP bonus", "body": "Extra 3 %", "group": "VIP"})
    anna, bob = app_client(), app_client()
    login(anna, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    login(bob, make_user(db, "affiliate", world.other_affiliate_id, "bob@example.com"))
    anna_news = anna.get("/affiliate/news").text
    bob_news = bob.get("/affiliate/news").text
    assert "Double 11 starts" in anna_news and "VIP bonus" in anna_news
    assert "Double 11 starts" in bob_news and "VIP bonus" not in bob_news
    assert "<b>today</b>" not in anna_news and "&lt;b&gt;today&lt;/b&gt;" in anna_news
    assert "VIP bonus" in anna.get("/affiliate").text


def test_analysts_cannot_change_promotion_tools(db, client):
    world = _merchant(db, client, member_role="analyst")
    before = snapshot(db)
    for tab in ("creatives", "coupons", "groups", "invites", "announcements"):
        path = f"/merchant/programs/{world.program.id}/{tab}"
        assert client.get(path).status_code == 200
        r = post_form(client, path, path, {"kind": "text", "name": "n", "body": "b"})
        assert r.status_code == 403
    assert snapshot(db) == before


def test_api_key_callers_see_coupon_status(db, client):
    world = make_world(db)
    r = client.post(
        "/api/v1/coupons",
        json={"program_id": world.program.id, "affiliate_id": world.affiliate_id, "code": "Q1"},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 201 and r.json()["status"] == "active"


def test_the_api_does_what_the_console_does(db, client):
    world = make_world(db)
    merchant, affiliate = bearer(world.merchant_key), bearer(world.affiliate_key)
    p = world.program.id
    r = client.post(
        f"/api/v1/programs/{p}/banners",
        data={"name": "Leaderboard"},
        files={"file": ("b.gif", _png(728, 90, "GIF"), "image/gif")},
        headers=merchant,
    )
    assert r.status_code == 201, r.text
    banner = r.json()
    assert banner["image_url"].startswith("http://testserver/creatives/")
    assert (banner["width"], banner["height"]) == (728, 90)
    assert client.get(banner["image_url"]).headers["content-type"] == "image/gif"
    before = snapshot(db)
    r = client.post(
        f"/api/v1/programs/{p}/banners",
        data={"name": "Fake"},
        files={"file": ("x.svg", b"<svg onload='alert(1)'/>", "image/svg+xml")},
        headers=merchant,
    )
    assert r.status_code == 400 and r.json()["error"]["field"] == "file"
    assert snapshot(db) == before
    r = client.post(
        f"/api/v1/programs/{p}/creatives",
        json={"kind": "html", "name": "S", "body": '<a href="{link}" onmouseover="x()">Go</a>'},
        headers=merchant,
    )
    assert r.status_code == 201 and "onmouseover" not in r.json()["body"]
    r = client.patch(
        f"/api/v1/creatives/{banner['id']}", json={"status": "archived"}, headers=merchant
    )
    assert r.json()["status"] == "archived"
    listed = client.get(f"/api/v1/programs/{p}/creatives", headers=affiliate).json()
    assert [c["kind"] for c in listed] == ["html"]
    # invitations and announcements
    r = client.post(f"/api/v1/programs/{p}/invites", json={"max_uses": 1}, headers=merchant)
    assert r.status_code == 201
    assert r.json()["url"].startswith("http://testserver/join/")
    listed = client.get(f"/api/v1/programs/{p}/invites", headers=merchant).json()
    assert [i["url"] for i in listed] == [None]  # the token is never shown again
    other = world.other_program.id
    r = client.post(
        f"/api/v1/programs/{other}/invites", json={}, headers=bearer(world.operator_key)
    )
    other_token = r.json()["url"].rsplit("/", 1)[1]
    r = client.post("/api/v1/invites/accept", json={"token": other_token}, headers=affiliate)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = client.post("/api/v1/invites/accept", json={"token": "nope"}, headers=affiliate)
    assert r.status_code == 404
    r = client.post(
        f"/api/v1/programs/{p}/announcements",
        json={"title": "New rates", "body": "From Monday"},
        headers=merchant,
    )
    assert r.status_code == 201
    news = client.get("/api/v1/announcements", headers=affiliate).json()
    assert [n["title"] for n in news] == ["New rates"]
