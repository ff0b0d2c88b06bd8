"""What affiliates and merchants do in the portals, through the same services as the API."""

from __future__ import annotations

import csv
import html
import io
import re

from sqlalchemy import select

from factories.http import click, convert, snapshot
from factories.portal import login, make_user, post_form
from factories.world import make_world
from tuike.services import catalog as svc
from tuike.storage import tables as t


def _affiliate(db, client):
    world = make_world(db)
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    return world


def _merchant(db, client, **extra):
    world = make_world(db)
    login(client, make_user(db, "merchant", world.merchant_id, "boss@example.com", **extra))
    return world


def test_marketplace_lists_programs_by_epc_and_joins(db, client):
    world = _affiliate(db, client)
    with db.write() as conn:
        third = svc.create_program(
            conn,
            merchant_id=world.merchant_id,
            currency="CNY",
            name="Leads Program",
            landing_url="https://leads.example.com/",
            allowed_domains=[],
            fallback_url=None,
            cookie_days=7,
            lock_days=0,
            commission_plan={"fixed": {"lead": "8.00"}},
            category="finance",
        )
    page = client.get("/affiliate/programs")
    assert page.status_code == 200
    assert page.text.count("data-program=") == 3
    cpl = client.get("/affiliate/programs", params={"model": "CPL"}).text
    assert 'data-program="Leads Program"' in cpl and 'data-program="Other CPS"' not in cpl
    finance = client.get("/affiliate/programs", params={"category": "finance"}).text
    assert finance.count("data-program=") == 1
    r = post_form(client, "/affiliate/programs", f"/affiliate/programs/{third.id}/apply", {})
    assert r.status_code == 303
    with db.read() as conn:
        status = conn.execute(
            select(t.memberships.c.status).where(
                t.memberships.c.program_id == third.id,
                t.memberships.c.affiliate_id == world.affiliate_id,
            )
        ).scalar_one()
    assert status == "applied"


def test_link_builder_makes_deep_links_with_subs_and_qr_codes(db, client):
    world = _affiliate(db, client)
    form = {
        "program_id": str(world.program.id),
        "landing_url": "https://shop.example.com/item/42",
        "sub1": "wechat-group-7",
    }
    r = post_form(client, "/affiliate/links", "/affiliate/links", form)
    assert r.status_code == 303
    code = r.headers["location"].split("new=")[1]
    page = client.get(r.headers["location"]).text
    assert f"http://testserver/c/{code}" in page and "wechat-group-7" in page
    svg = client.get(f"/affiliate/links/{code}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.content.lstrip().startswith(b"<?xml") or b"<svg" in svg.content[:200]
    png = client.get(f"/affiliate/links/{code}/qr.png")
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    hit = client.get(f"/c/{code}")
    assert hit.status_code == 302 and hit.headers["location"].startswith(
        "https://shop.example.com/item/42?tk_click="
    )
    # A deep link off the program's domains is refused and creates nothing.
    before = snapshot(db)
    bad = post_form(
        client,
        "/affiliate/links",
        "/affiliate/links",
        form | {"landing_url": "https://evil.example/"},
    )
    assert bad.status_code == 400 and 'data-testid="error"' in bad.text
    assert snapshot(db) == before


def test_affiliate_report_by_sub_id_and_csv(db, client):
    world = _affiliate(db, client)
    click(client, world.link.code)
    page = client.get("/affiliate/reports", params={"group_by": "sub1"})
    assert page.status_code == 200 and "wechat" in page.text
    r = client.get("/affiliate/reports", params={"group_by": "sub1", "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["sub1"] == "wechat" and rows[0]["clicks"] == "1"


def test_profile_keeps_payout_details_and_refuses_bad_ones(db, client):
    world = _affiliate(db, client)
    form = {
        "name": "Anna",
        "timezone": "Asia/Shanghai",
        "payout_method": "alipay",
        "payout_account": "anna@alipay.example",
        "payout_name": "安娜",
    }
    assert post_form(client, "/affiliate/profile", "/affiliate/profile", form).status_code == 200
    before = snapshot(db)
    bad = post_form(
        client, "/affiliate/profile", "/affiliate/profile", form | {"payout_method": "cash"}
    )
    assert bad.status_code == 400
    assert snapshot(db) == before
    with db.read() as conn:
        row = conn.execute(
            select(t.affiliates).where(t.affiliates.c.id == world.affiliate_id)
        ).one()
    assert (row.payout_method, row.payout_account, row.payout_name) == (
        "alipay",
        "anna@alipay.example",
        "安娜",
    )


def test_merchant_reviews_conversions_in_bulk_with_reasons(db, client):
    world = _merchant(db, client)
    first = convert(
        client, world.program_key, "R-1", click(client, world.link.code), amount="100.00"
    )
    second = convert(
        client, world.program_key, "R-2", click(client, world.link.code), amount="50.00"
    )
    page = client.get("/merchant/conversions")
    assert 'data-order="R-1"' in page.text and 'data-order="R-2"' in page.text
    before = snapshot(db)
    no_reason = post_form(
        client,
        "/merchant/conversions",
        "/merchant/conversions/review",
        {"ids": [second["conversion_id"]], "action": "rejected"},
    )
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    assert snapshot(db) == before
    r = post_form(
        client,
        "/merchant/conversions",
        "/merchant/conversions/review",
        {"ids": [first["conversion_id"]], "action": "approved"},
    )
    assert r.status_code == 303
    r = post_form(
        client,
        "/merchant/conversions",
        "/merchant/conversions/review",
        {"ids": [second["conversion_id"]], "action": "rejected", "reason": "order cancelled"},
    )
    assert r.status_code == 303
    with db.read() as conn:
        statuses = dict(
            conn.execute(select(t.conversions.c.order_id, t.conversions.c.status)).all()
        )
        reason = conn.execute(
            select(t.conversion_events.c.reason).where(
                t.conversion_events.c.conversion_id == second["conversion_id"],
                t.conversion_events.c.to_status == "rejected",
            )
        ).scalar_one()
    assert statuses == {"R-1": "approved", "R-2": "rejected"} and reason == "order cancelled"
    exported = client.get("/merchant/conversions", params={"format": "csv"})
    rows = {r["order_id"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert rows["R-1"]["status"] == "approved" and rows["R-1"]["commission"] == "10.00"
    found = client.get("/merchant/conversions", params={"order_id": "R-2"}).text
    assert 'data-order="R-2"' in found and 'data-order="R-1"' not in found


def test_test_conversion_runs_the_real_pipeline(db, client):
    world = _merchant(db, client)
    click_id = click(client, world.link.code)
    page = client.get(f"/merchant/programs/{world.program.id}/integration")
    assert click_id in page.text  # the latest click is offered
    assert world.program.public_id in page.text and "tk_click" in page.text
    r = post_form(
        client,
        f"/merchant/programs/{world.program.id}/integration",
        f"/merchant/programs/{world.program.id}/test-conversion",
        {"click_id": click_id, "order_id": "TEST-1", "amount": "200.00"},
    )
    assert r.status_code == 200 and 'data-testid="test-result"' in r.text
    assert "20.00" in r.text
    with db.read() as conn:
        row = conn.execute(select(t.conversions).where(t.conversions.c.order_id == "TEST-1")).one()
    assert row.affiliate_id == world.affiliate_id and row.commission_minor == 2000


def test_program_edits_are_validated_and_audited(db, client):
    world = _merchant(db, client)
    url = f"/merchant/programs/{world.program.id}"
    page = client.get(url).text
    plan = re.search(r'name="commission_plan" rows="10">([^<]+)</textarea>', page).group(1)
    form = {
        "name": "Shop CPS 2",
        "landing_url": "https://shop.example.com/",
        "fallback_url": "",
        "allowed_domains": "shop.example.com",
        "cookie_days": "45",
        "lock_days": "10",
        "category": "beauty",
        "status": "active",
        "commission_plan": html.unescape(plan),
    }
    before = snapshot(db)
    for bad in (
        {"commission_plan": "{nope"},
        {"cookie_days": "forever"},
        {"landing_url": "ftp://x"},
    ):
        r = post_form(client, url, url, form | bad)
        assert r.status_code == 400, bad
    assert snapshot(db) == before
    assert post_form(client, url, url, form).status_code == 200
    with db.read() as conn:
        row = conn.execute(select(t.programs).where(t.programs.c.id == world.program.id)).one()
        action = conn.execute(select(t.audit_log.c.action)).scalars().all()
    assert (row.name, row.cookie_days, row.lock_days) == ("Shop CPS 2", 45, 10)
    assert "program.update" in action


def test_team_invitation_and_read_only_analysts(db, client):
    world = _merchant(db, client)
    r = post_form(
        client,
        "/merchant/team",
        "/merchant/team",
        {"email": "analyst@example.com", "name": "Ana", "member_role": "analyst"},
    )
    assert r.status_code == 200 and "Invitation sent" in r.text
    with db.read() as conn:
        body = conn.execute(
            select(t.email_outbox.c.body).where(t.email_outbox.c.to_addr == "analyst@example.com")
        ).scalar_one()
    link = re.search(r"http://testserver(/password/reset/\S+)", body).group(1)
    client.cookies.clear()
    assert post_form(client, link, link, {"password": "analyst passphrase"}).status_code == 303
    assert client.get("/merchant/conversions").status_code == 200
    before = snapshot(db)
    url = f"/merchant/programs/{world.program.id}"
    assert post_form(client, url, url, {"name": "x"}).status_code == 403
    assert (
        post_form(
            client, "/merchant/team", "/merchant/team", {"email": "z@example.com"}
        ).status_code
        == 403
    )
    assert snapshot(db) == before


def test_dashboards_show_commission_in_the_locale(db, client):
    world = _affiliate(db, client)
    convert(client, world.program_key, "D-1", click(client, world.link.code), amount="1234.00")
    page = client.get("/affiliate")
    assert 'data-testid="pending-CNY"' in page.text and "CN¥123.40" in page.text
    client.cookies.set("tk_lang", "zh_CN")
    page = client.get("/affiliate")
    assert "¥123.40" in page.text and "待结算" in page.text


def test_conversion_list_pages_by_100_and_the_csv_has_them_all(db, client):
    world = _merchant(db, client)
    for i in range(105):
        convert(client, world.program_key, f"P-{i:03d}", amount="10.00")
    first = client.get("/merchant/conversions")
    assert first.text.count("data-order=") == 100 and "P-104" in first.text
    older = re.search(r'href="(\?[^"]*before=[0-9A-Z]{26}[^"]*)"', first.text).group(1)
    second = client.get("/merchant/conversions" + html.unescape(older))
    assert second.text.count("data-order=") == 5 and "P-000" in second.text
    assert "P-104" not in second.text
    rows = list(csv.reader(io.StringIO(client.get("/merchant/conversions?format=csv").text)))
    assert len(rows) == 106
