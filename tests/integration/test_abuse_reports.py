"""Abuse reports: anyone reports a spammed link (public page and API, rate-limited), the
operator upholds or dismisses it, and the affiliate's quality job can count them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from factories.http import assert_error, bearer, count, snapshot
from factories.portal import csrf_of, login, make_user, post_form
from factories.world import World, make_world
from tuike.domain.errors import InvalidField
from tuike.services import abuse, audit
from tuike.services.clock import utcnow
from tuike.storage import tables

API = "/api/v1/abuse-reports"


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


def report(w: World, **fields: Any) -> dict[str, Any]:
    return {
        "link": f"http://testserver/c/{w.link.code}?sub1=x",
        "kind": "group_spam",
        "where_url": "WeChat group 'Deals 88'",
        **fields,
    }


def test_anyone_reports_a_link_over_the_api(db, client, world):
    r = client.post(API, json=report(world, reporter_email="Reader@Example.com"))
    assert r.status_code == 201, r.text
    assert r.json() == {"id": r.json()["id"], "status": "open"}
    with db.read() as conn:
        row = conn.execute(select(tables.abuse_reports)).one()
    assert (row.link_code, row.link_id, row.affiliate_id, row.program_id) == (
        world.link.code,
        world.link.id,
        world.affiliate_id,
        world.program.id,
    )
    assert (row.kind, row.status, row.reporter_email) == (
        "group_spam",
        "open",
        "reader@example.com",
    )
    # The bare code works too.
    assert client.post(API, json=report(world, link=world.link.code)).status_code == 201


def test_bad_reports_are_refused_and_store_nothing(db, client, world):
    before = count(db, tables.abuse_reports)
    for fields, field in (
        ({"link": "https://elsewhere.example/page"}, "link"),
        ({"link": "http://testserver/c/NoSuchCode1"}, "link"),
        ({"link": ""}, "link"),
        ({"kind": "rude"}, "kind"),
        ({"where_url": "", "description": ""}, "description"),
        ({"reporter_email": "not-an-address"}, "reporter_email"),
        ({"description": "a\x00b"}, "description"),
        ({"surprise": 1}, "surprise"),
    ):
        r = client.post(API, json=report(world, **fields))
        assert r.status_code == 400, (fields, r.text)
        assert r.json()["error"].get("field") == field, (fields, r.json())
    assert count(db, tables.abuse_reports) == before


def test_reports_are_rate_limited_per_address(db, settings, world):
    from fastapi.testclient import TestClient

    from tuike.web.app import create_app

    limited = settings.model_copy(update={"login_max_failures_per_ip": 3})
    with TestClient(create_app(limited, db), follow_redirects=False) as c:
        codes = [c.post(API, json=report(world)).status_code for _ in range(3)]
        assert codes == [201, 201, 201]
        r = c.post(API, json=report(world))
        assert_error(r, 429)
        assert int(r.headers["retry-after"]) > 0
        # The public page shares the allowance.
        page = c.get("/report-abuse")
        r = c.post("/report-abuse", data={**report(world), "csrf": csrf_of(page.text)})
        assert r.status_code == 429
    assert count(db, tables.abuse_reports) == 3


def test_the_public_page_works_without_signing_in(db, client, world):
    home = client.get("/")
    assert 'href="/report-abuse"' in home.text
    page = client.get("/report-abuse", params={"link": f"http://testserver/c/{world.link.code}"})
    assert page.status_code == 200 and world.link.code in page.text
    before = snapshot(db)
    r = client.post("/report-abuse", data=report(world))  # no CSRF token
    assert r.status_code == 403
    r = client.post(
        "/report-abuse",
        data={**report(world, link="nonsense!"), "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 400 and 'data-testid="error"' in r.text
    assert {k: v for k, v in snapshot(db).items() if k != "login_attempts"} == {
        k: v for k, v in before.items() if k != "login_attempts"
    }
    r = post_form(client, "/report-abuse", "/report-abuse", report(world, kind="misleading"))
    assert r.status_code == 201 and 'data-testid="filed"' in r.text
    with db.read() as conn:
        row = conn.execute(select(tables.abuse_reports)).one()
    assert (row.kind, row.affiliate_id) == ("misleading", world.affiliate_id)


def test_the_operator_upholds_or_dismisses_once(db, client, world):
    ids_ = [client.post(API, json=report(world)).json()["id"] for _ in range(3)]
    assert_error(client.get(API, headers=bearer(world.merchant_key)), 403)
    listed = client.get(f"{API}?status=open", headers=bearer(world.operator_key)).json()
    assert [r["id"] for r in listed] == sorted(ids_, reverse=True)
    assert listed[0]["affiliate_id"] == world.affiliate_id
    url = f"{API}/{ids_[0]}/resolve"
    before = snapshot(db)
    for body in ({"status": "upheld", "reason": ""}, {"status": "maybe", "reason": "r"}):
        assert_error(client.post(url, json=body, headers=bearer(world.operator_key)), 400)
    assert_error(
        client.post(
            url, json={"status": "upheld", "reason": "r"}, headers=bearer(world.merchant_key)
        ),
        403,
    )
    assert_error(
        client.post(
            f"{API}/999999/resolve",
            json={"status": "upheld", "reason": "r"},
            headers=bearer(world.operator_key),
        ),
        404,
    )
    assert snapshot(db) == before
    body = {"status": "upheld", "reason": "screenshots match"}
    r = client.post(url, json=body, headers=bearer(world.operator_key))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["resolution"]) == ("upheld", "screenshots match")
    assert_error(client.post(url, json=body, headers=bearer(world.operator_key)), 409)
    with db.read() as conn:
        (entry,) = audit.recent(conn, action="abuse_report.upheld")
        counts = abuse.reports_against(conn, world.affiliate_id, utcnow() - timedelta(days=1))
        later = abuse.reports_against(conn, world.affiliate_id, utcnow() + timedelta(days=1))
        other = abuse.reports_against(conn, world.other_affiliate_id, utcnow() - timedelta(days=1))
    assert entry.detail["affiliate_id"] == world.affiliate_id
    assert counts == {"open": 2, "upheld": 1, "dismissed": 0}
    assert later == other == {"open": 0, "upheld": 0, "dismissed": 0}


def test_the_operator_console(db, client, world):
    report_id = client.post(API, json=report(world)).json()["id"]
    make_user(db, "operator", None, "op@example.com")
    assert login(client, "op@example.com").status_code == 303
    page = client.get("/operator/abuse")
    assert page.status_code == 200 and world.link.code in page.text and "Affiliate 1" in page.text
    r = post_form(
        client,
        "/operator/abuse",
        f"/operator/abuse/{report_id}/resolve",
        {"status": "dismissed", "reason": ""},
    )
    assert r.status_code == 400
    r = post_form(
        client,
        "/operator/abuse",
        f"/operator/abuse/{report_id}/resolve",
        {"status": "dismissed", "reason": "a legitimate deal group"},
    )
    assert (r.status_code, r.headers["location"]) == (303, "/operator/abuse")
    assert world.link.code not in client.get("/operator/abuse").text  # no longer open
    assert "a legitimate deal group" in client.get("/operator/abuse?status=dismissed").text


@pytest.mark.parametrize(
    ("link", "code"),
    [
        ("https://t.example/c/AbC12345", "AbC12345"),
        ("t.example/c/AbC12345?sub1=x#top", "AbC12345"),
        ("AbC12345", "AbC12345"),
    ],
)
def test_link_codes_are_read_from_urls_or_given_bare(link, code):
    assert abuse.link_code_of(link) == code


@pytest.mark.parametrize("link", ["https://t.example/x/AbC12345", "https://t.example/c/", "a b"])
def test_other_links_are_refused(link):
    with pytest.raises(InvalidField):
        abuse.link_code_of(link)
