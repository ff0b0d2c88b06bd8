"""The whole CPS loop over HTTP against the real server, with a cookie-keeping client.

Figures computed by hand: a 1,099.80 CNY order of one phone (1,000.00 at 3 %) and two
accessories (49.90 each, 99.80 at 8 %) earns 30.00 + 7.984 -> 7.98 = 37.98 CNY. Refunding
the accessories (refund_amount 99.80) leaves 37.98 x 1,000.00 / 1,099.80 = 34.533… ->
34.53 CNY on a net amount of 1,000.00.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _signed(query: dict[str, str], secret: str) -> str:
    raw = urlencode(query)
    sig = hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    return f"{raw}&sig={sig}"


def test_program_to_report_over_http(server):
    base = server.base_url
    operator = server.cli("keys", "create", "--role", "operator", "--name", "e2e").strip()
    api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)

    def call(method: str, path: str, key: str, **kw):
        r = api.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    merchant = call("POST", "/merchants", operator, json={"name": "Gadget Shop"})
    merchant_key = call(
        "POST", "/keys", operator, json={"role": "merchant", "owner_id": merchant["id"]}
    )["key"]
    program = call(
        "POST",
        "/programs",
        merchant_key,
        json={
            "name": "Gadgets CPS",
            "currency": "CNY",
            "landing_url": "https://gadgets.example.com/",
            "allowed_domains": ["gadgets.example.com"],
            "cookie_days": 30,
            "lock_days": 15,
            "require_signature": True,
            "commission_plan": {
                "cps_percent": "10",
                "category_percent": {"phones": "3", "accessories": "8"},
            },
        },
    )
    program_key = call(
        "POST", "/keys", merchant_key, json={"role": "program", "owner_id": program["id"]}
    )["key"]
    affiliate = call(
        "POST",
        "/affiliates",
        operator,
        json={
            "name": "Anna",
            "email": "anna@example.com",
            "channels": [{"kind": "im", "name": "Deals group", "url": "wechat:deals"}],
        },
    )
    affiliate_key = call(
        "POST", "/keys", operator, json={"role": "affiliate", "owner_id": affiliate["id"]}
    )["key"]
    membership = call("POST", f"/programs/{program['id']}/memberships", affiliate_key, json={})
    assert membership["status"] == "applied"
    approved = call(
        "PATCH", f"/memberships/{membership['id']}", merchant_key, json={"status": "approved"}
    )
    assert approved["status"] == "approved"
    link = call(
        "POST",
        "/links",
        affiliate_key,
        json={
            "program_id": program["id"],
            "sub1": "wechat-group",
            "landing_url": "https://gadgets.example.com/phones?ref=home",
        },
    )
    assert link["url"] == f"{base}/c/{link['code']}"

    # The visitor's browser: keeps cookies across requests, does not follow redirects.
    browser = httpx.Client(timeout=10, follow_redirects=False)
    r = browser.get(
        link["url"],
        params={"sub2": "morning-post"},
        headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile"},
    )
    assert r.status_code == 302
    landing = urlsplit(r.headers["location"])
    assert landing.netloc == "gadgets.example.com" and landing.path == "/phones"
    query = parse_qs(landing.query)
    click_id = query["tk_click"][0]
    assert query["ref"] == ["home"]
    assert browser.cookies.get("tk_click") == click_id
    assert r.headers["cache-control"] == "no-store"

    sale = {
        "event": "sale",
        "order_id": "G-1001",
        "click_id": click_id,
        "amount": "1099.80",
        "currency": "CNY",
        "status": "pending",
        "items": [
            {"sku": "PHONE-1", "category": "phones", "amount": "1000.00", "quantity": 1},
            {"sku": "CASE-1", "category": "accessories", "amount": "49.90", "quantity": 2},
        ],
    }
    r = api.post("/conversions", json=sale, headers={"Authorization": f"Bearer {program_key}"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["attributed"], created["affiliate_id"]) == (True, affiliate["id"])
    assert (created["commission"], created["currency"]) == ("37.98", "CNY")

    secret = call("GET", f"/programs/{program['id']}", merchant_key)["postback_secret"]
    pb = {
        "key": program_key,
        "event": "sale",
        "order_id": "G-1001",
        "click_id": click_id,
        "amount": "1099.80",
        "currency": "CNY",
        "status": "pending",
    }
    r = httpx.get(f"{base}/pb?{_signed(pb, secret)}")
    assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    assert r.json()["conversion_id"] == created["conversion_id"]
    r = httpx.get(f"{base}/pb?{urlencode(pb)}&sig={'0' * 64}")
    assert r.status_code == 401

    refund = {**pb, "status": "refunded", "refund_amount": "99.80"}
    r = httpx.get(f"{base}/pb?{_signed(refund, secret)}")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["commission"]) == ("pending", "34.53")
    assert r.json()["refunded_amount"] == "99.80"

    report = call(
        "GET",
        "/reports",
        merchant_key,
        params={"group_by": "program,sub1,sub2", "tz": "Asia/Shanghai"},
    )
    rows = report["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["program"], row["sub1"], row["sub2"]) == (
        program["id"],
        "wechat-group",
        "morning-post",
    )
    assert (row["clicks"], row["unique_clicks"], row["conversions"]) == (1, 1, 1)
    assert (row["amount"], row["commission"], row["cost"]) == ("1000.00", "34.53", "34.53")
    assert (row["epc"], row["conversion_rate"]) == ("34.5300", "1.0000")
    mine = call("GET", "/reports", affiliate_key, params={"group_by": "program"})["rows"]
    assert mine[0]["commission"] == "34.53" and "cost" not in mine[0]
