"""Guards against abuse found in review: pixel takeover, backdating, XSS, pauses, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from factories.http import bearer, click, patch_program
from factories.world import make_world
from tuike.storage import tables
from tuike.workers.approvals import approve_due


def _rollup_matches_conversions(db) -> None:
    c, r = tables.conversions.c, tables.conversion_rollups.c
    with db.read() as conn:
        raw = conn.execute(
            select(
                func.count(),
                func.sum(c.amount_minor - c.refunded_minor),
                func.sum(c.commission_minor),
            )
        ).one()
        rolled = conn.execute(
            select(func.sum(r.conversions), func.sum(r.amount_minor), func.sum(r.commission_minor))
        ).one()
    assert tuple(raw) == tuple(rolled)


def test_the_merchants_report_replaces_what_a_pixel_claimed(db, client):
    w = make_world(db)
    mine = click(client, w.link.code)
    r = client.get(
        "/px.gif",
        params={
            "program": w.program.public_id,
            "order_id": "REAL-9",
            "amount": "50000.00",
            "click_id": mine,
        },
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    r = client.post(
        "/api/v1/conversions",
        headers=bearer(w.program_key),
        json={"order_id": "REAL-9", "amount": "100.00", "status": "approved"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # The authenticated report is the truth: its amount, and no click -> nobody earns.
    assert (body["amount"], body["status"], body["attributed"]) == ("100.00", "approved", False)
    assert body["commission"] == "0.00"
    with db.read() as conn:
        row = conn.execute(select(tables.conversions)).one()
    assert (row.source, row.amount_minor) == ("api", 10000)
    _rollup_matches_conversions(db)


def test_pixel_conversions_under_review_wait_for_the_merchant(db, client):
    w = make_world(db, lock_days=0)
    patch_program(client, w, pixel_pending_review=True)
    mine = click(client, w.link.code)
    client.get(
        "/px.gif",
        params={
            "program": w.program.public_id,
            "order_id": "PX-1",
            "amount": "99.00",
            "click_id": mine,
            "occurred_at": "2001-01-01T00:00:00Z",
        },
    )
    assert approve_due(db) == 0
    with db.read() as conn:
        assert conn.execute(select(tables.conversions.c.status)).scalar_one() == "pending"


def test_tracker_error_pages_escape_what_the_visitor_sent(db, client):
    w = make_world(db)
    r = client.get(f"/c/{w.link.code}", params={"url": "https://<img src=x onerror=alert(1)>/"})
    assert r.status_code == 400
    assert "<img" not in r.text and "&lt;img" in r.text


def test_an_affiliate_cannot_resume_a_link_its_merchant_paused(db, client):
    w = make_world(db)
    url = f"/api/v1/links/{w.link.id}"
    assert (
        client.patch(url, json={"status": "paused"}, headers=bearer(w.merchant_key)).status_code
        == 200
    )
    r = client.patch(url, json={"status": "active"}, headers=bearer(w.affiliate_key))
    assert r.status_code == 403
    assert client.get(f"/c/{w.link.code}").status_code == 410
    # Its own pause, an affiliate may lift.
    assert (
        client.patch(url, json={"status": "active"}, headers=bearer(w.merchant_key)).status_code
        == 200
    )
    assert (
        client.patch(url, json={"status": "paused"}, headers=bearer(w.affiliate_key)).status_code
        == 200
    )
    assert (
        client.patch(url, json={"status": "active"}, headers=bearer(w.affiliate_key)).status_code
        == 200
    )


def test_csv_cells_never_start_a_formula(db, client):
    w = make_world(db)
    client.get(f"/c/{w.link.code}", params={"sub1": '=HYPERLINK("http://evil")'})
    today = datetime.now(UTC).date()
    r = client.get(
        "/api/v1/reports",
        headers=bearer(w.merchant_key),
        params={
            "group_by": "sub1",
            "format": "csv",
            "tz": "UTC",
            "from": (today - timedelta(days=1)).isoformat(),
            "to": today.isoformat(),
        },
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["sub1"] == '\'=HYPERLINK("http://evil")'


def test_links_to_a_domain_the_merchant_removed_land_on_the_program_page(db, client):
    w = make_world(db)
    r = client.post(
        "/api/v1/links",
        headers=bearer(w.affiliate_key),
        json={"program_id": w.program.id, "landing_url": "https://m.example.cn/x"},
    )
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    patch_program(client, w, allowed_domains=["shop.example.com"])
    location = client.get(f"/c/{code}").headers["location"]
    assert location.startswith("https://shop.example.com/?tk_click=")
