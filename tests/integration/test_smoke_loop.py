"""The core loop through the HTTP API, in process, on both databases."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from factories.world import make_world


def test_click_sale_refund_report(db, client):
    w = make_world(db)
    r = client.get(
        f"/c/{w.link.code}?sub2=spring", headers={"user-agent": "Mozilla/5.0 (iPhone; Mobile)"}
    )
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["location"])
    click_id = parse_qs(loc.query)["tk_click"][0]
    assert r.cookies.get("tk_click") == click_id
    auth = {"Authorization": f"Bearer {w.program_key}"}
    sale = {
        "event": "sale",
        "order_id": "A-1",
        "click_id": click_id,
        "amount": "199.00",
        "currency": "CNY",
    }
    r = client.post("/api/v1/conversions", json=sale, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["commission"] == "19.90"
    r = client.post("/api/v1/conversions", json=sale, headers=auth)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    r = client.post(
        "/api/v1/conversions",
        json={**sale, "status": "refunded", "refund_amount": "99.00"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["commission"] == "10.00"
    r = client.get(
        "/api/v1/reports?group_by=program,sub1",
        headers={"Authorization": f"Bearer {w.merchant_key}"},
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[0]["clicks"] == 1 and rows[0]["commission"] == "10.00", rows
