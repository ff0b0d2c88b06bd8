"""Server-to-server conversions, POST /api/v1/conversions (spec section 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from factories.http import (
    assert_error,
    bearer,
    click,
    membership_id,
    post,
    read_back,
    row_of,
    sale,
    stored,
)
from factories.world import World, make_world
from tuike.domain import ids
from tuike.domain.tracking import ClickRecord
from tuike.services.clicks import record_clicks
from tuike.services.keys import hash_key, revoke_key
from tuike.storage import tables

URL = "/api/v1/conversions"


# --- helpers -------------------------------------------------------------------------


def click_at(db: Any, w: World, at: datetime) -> str:
    """Store a click of the world's link made at a chosen time; return its id."""
    record = ClickRecord(
        id=ids.new_ulid(at),
        clicked_at=at,
        program_id=w.program.id,
        link_id=w.link.id,
        affiliate_id=w.affiliate_id,
        creative_id=None,
        subs=("wechat", "", "", "", ""),
        aff_click_id="",
        landing_url="https://shop.example.com/",
        ip=None,
        user_agent="",
        referer="",
        country="",
        device="desktop",
        visitor="v" * 32,
        is_unique=True,
        is_bot=False,
    )
    with db.write() as conn:
        record_clicks(conn, [record])
    return record.id


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


# --- new conversions -----------------------------------------------------------------


def test_new_sale_answers_201_with_the_documented_body(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    r = post(client, world, sale(click_id=click_id, customer_id="cust-42"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert ids.is_ulid(body["conversion_id"])
    assert body == {
        "conversion_id": body["conversion_id"],
        "status": "pending",
        "attributed": True,
        "affiliate_id": world.affiliate_id,
        "commission": "19.90",
        "currency": "CNY",
        "amount": "199.00",
        "refunded_amount": "0.00",
        "event": "sale",
        "order_id": "A-1",
        "attribution": "click_id",
        "fraud_score": 0,
        "held": False,
    }
    assert read_back(client, world, body["conversion_id"]) == body
    row = row_of(db, "A-1")
    assert (row.click_id, row.link_id, row.sub1, row.aff_click_id, row.source) == (
        click_id,
        world.link.id,
        "wechat",
        "AFF-1",
        "api",
    )
    # Only a salted hash of the customer id is kept.
    assert row.customer_hash and "cust-42" not in row.customer_hash
    assert stored(db) == (1, 1, 1)


def test_repeat_is_a_duplicate_never_a_second_conversion(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    first = post(client, world, sale(click_id=click_id))
    assert first.status_code == 201
    for _ in range(3):
        again = post(client, world, sale(click_id=click_id))
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "duplicate": True}
    assert stored(db) == (1, 1, 1)
    # The same order id is another conversion for another event or another program.
    lead = post(client, world, {"event": "lead", "order_id": "A-1", "click_id": click_id})
    assert lead.status_code == 201 and lead.json()["commission"] == "5.00"
    other = client.post(URL, json=sale(), headers=bearer(world.other_program_key))
    assert other.status_code == 201
    assert stored(db) == (3, 3, 3)


def test_unattributed_order_is_stored_for_reconciliation(db, client, world):
    r = post(client, world, sale("ORG-1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["attributed"] is False
    assert body["affiliate_id"] is None
    assert body["commission"] == "0.00"
    assert body["amount"] == "199.00"
    assert body["attribution"] == "none"
    # A well-formed click id that no click has is not an error either.
    r = post(client, world, sale("ORG-2", click_id=ids.new_ulid()))
    assert r.status_code == 201 and r.json()["attributed"] is False
    assert stored(db) == (2, 2, 2)


def test_coupon_owned_by_an_affiliate_attributes_the_order(db, client, world):
    r = client.post(
        "/api/v1/coupons",
        json={
            "program_id": world.program.id,
            "affiliate_id": world.other_affiliate_id,
            "code": "summer-anna",
        },
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 201, r.text
    assert r.json()["code"] == "SUMMER-ANNA"
    r = post(client, world, sale("C-1", coupon="Summer-Anna"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["attributed"], body["affiliate_id"], body["attribution"]) == (
        True,
        world.other_affiliate_id,
        "coupon",
    )
    assert body["commission"] == "19.90"
    # A click id in hand wins over the coupon.
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    r = post(client, world, sale("C-2", coupon="SUMMER-ANNA", click_id=click_id))
    assert (r.json()["affiliate_id"], r.json()["attribution"]) == (world.affiliate_id, "click_id")
    # An unknown coupon attributes nothing.
    r = post(client, world, sale("C-3", coupon="NOPE-99"))
    assert r.status_code == 201 and r.json()["attributed"] is False


def test_click_id_of_another_program_is_refused_and_nothing_stored(db, client, world):
    foreign = click(client, world.other_link.code, aff_click_id="AFF-1")
    assert_error(post(client, world, sale(click_id=foreign)), 400, "click_id")
    assert_error(post(client, world, sale(click_id="not-a-click-id")), 400, "click_id")
    assert stored(db) == (0, 0, 0)


def test_click_outside_the_cookie_window_does_not_attribute(db, client, world):
    now = datetime.now(UTC)
    stale = click_at(db, world, now - timedelta(days=31))
    fresh = click_at(db, world, now - timedelta(days=29))
    r = post(client, world, sale("OLD", click_id=stale))
    assert r.status_code == 201, r.text
    assert (r.json()["attributed"], r.json()["commission"]) == (False, "0.00")
    r = post(client, world, sale("NEW", click_id=fresh))
    assert (r.json()["attributed"], r.json()["commission"]) == (True, "19.90")
    # A conversion that happened before the click is not the click's either.
    r = post(
        client,
        world,
        sale("BEFORE", click_id=fresh, occurred_at=(now - timedelta(days=30)).isoformat()),
    )
    assert r.status_code == 201 and r.json()["attributed"] is False
    assert stored(db)[0] == 3


# --- commission ----------------------------------------------------------------------


def test_item_commission_uses_category_rates(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    items = [
        {"sku": "P1", "category": "phones", "amount": "1000.00", "quantity": 1},  # 3% = 30.00
        {"sku": "A1", "category": "accessories", "amount": "49.90", "quantity": 2},  # 8% = 7.98
        {"sku": "B1", "category": "beauty", "amount": "99.00"},  # default 10% = 9.90
    ]
    r = post(client, world, sale("ITEMS", click_id=click_id, amount="1198.80", items=items))
    assert r.status_code == 201, r.text
    assert r.json()["commission"] == "47.88"
    # The house rounding is ROUND_HALF_UP: 10% of 4.25 is 0.425 -> 0.43.
    r = post(client, world, sale("HALF", click_id=click_id, amount="4.25"))
    assert r.json()["commission"] == "0.43"


def test_items_are_validated(db, client, world):
    for items, field in [
        ([{"category": "phones", "amount": 10.5}], "items[0].amount"),
        ([{"category": "phones", "amount": "1.00", "quantity": 0}], "items[0].quantity"),
        ([{"category": "phones", "amount": "1.00", "quantity": "2"}], "items[0].quantity"),
        ([{"amount": "1.00"}, {"amount": "-1.00"}], "items[1].amount"),
        ("phones", "items"),
    ]:
        assert_error(post(client, world, sale(items=items)), 400, field)
    assert stored(db) == (0, 0, 0)


def test_vip_group_override_applies_to_its_members(db, client, world):
    mid = membership_id(client, world, world.affiliate_id)
    r = client.patch(
        f"/api/v1/memberships/{mid}",
        json={"status": "approved", "group": "vip"},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 200 and r.json()["group"] == "vip"
    r = post(
        client, world, sale("VIP", click_id=click(client, world.link.code, aff_click_id="AFF-1"))
    )
    assert r.json()["commission"] == "23.88"  # 12% of 199.00
    # The other affiliate is not in the group.
    coupon = client.post(
        "/api/v1/coupons",
        json={
            "program_id": world.program.id,
            "affiliate_id": world.other_affiliate_id,
            "code": "B2",
        },
        headers=bearer(world.merchant_key),
    )
    assert coupon.status_code == 201
    r = post(client, world, sale("B", coupon="B2"))
    assert r.json()["commission"] == "19.90"


@pytest.mark.parametrize(
    ("event", "commission"), [("lead", "5.00"), ("install", "2.50"), ("register", "1.00")]
)
def test_fixed_commission_events(db, client, world, event, commission):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    r = post(client, world, {"event": event, "order_id": "E-1", "click_id": click_id})
    assert r.status_code == 201, r.text
    assert (r.json()["event"], r.json()["commission"], r.json()["amount"]) == (
        event,
        commission,
        "0.00",
    )


def test_unknown_event_is_refused(db, client, world):
    for event in ("purchase", "Sale", "sale!", ""):
        body = sale(event=event) if event else {**sale(), "event": "x" * 41}
        assert_error(post(client, world, body), 400, "event")
    assert stored(db) == (0, 0, 0)
    # A custom action exists only in the plans that define it; lead and install always do.
    other = bearer(world.other_program_key)
    r = client.post(URL, json={"event": "register", "order_id": "R-1"}, headers=other)
    assert_error(r, 400, "event")
    assert stored(db) == (0, 0, 0)
    click_id = click(client, world.other_link.code, aff_click_id="AFF-1")
    r = client.post(
        URL, json={"event": "lead", "order_id": "L-1", "click_id": click_id}, headers=other
    )
    assert r.status_code == 201, r.text
    assert (r.json()["attributed"], r.json()["commission"]) == (True, "0.00")


# --- rejected requests ---------------------------------------------------------------


def test_malformed_fields_answer_400_with_the_field_and_store_nothing(db, client, world):
    soon = datetime.now(UTC) + timedelta(days=2)
    cases: list[tuple[dict[str, Any], str]] = [
        (sale(amount="-1.00"), "amount"),
        (sale(amount="abc"), "amount"),
        (sale(amount=12.5), "amount"),
        (sale(amount="12.345"), "amount"),
        (sale(amount="NaN"), "amount"),
        (sale(amount="Infinity"), "amount"),
        (sale(amount="1e30"), "amount"),
        (sale(amount=True), "amount"),
        ({k: v for k, v in sale().items() if k != "amount"}, "amount"),
        (sale(currency="XYZ"), "currency"),
        (sale(currency="usd"), "currency"),
        (sale(currency="USD"), "currency"),
        (sale(occurred_at=soon.isoformat()), "occurred_at"),
        (sale(occurred_at="yesterday"), "occurred_at"),
        (sale(occurred_at="9999-12-31T23:59:59-12:00"), "occurred_at"),
        (sale(occurred_at="1999-12-31T23:59:59Z"), "occurred_at"),
        (sale(occurred_at="2026-11-11T00:00:05"), "occurred_at"),
        ({k: v for k, v in sale().items() if k != "order_id"}, "order_id"),
        (sale(order_id=""), "order_id"),
        (sale(order_id="x" * 129), "order_id"),
        (sale(order_id="A\n1"), "order_id"),
        (sale(status="paid"), "status"),
        (sale(refund_amount="1.00"), "refund_amount"),
        (sale(colour="red"), "colour"),
    ]
    for body, field in cases:
        assert_error(post(client, world, body), 400, field)
        assert stored(db) == (0, 0, 0), body
    # Not JSON at all.
    r = client.post(
        URL,
        content=b"event=sale",
        headers={**bearer(world.program_key), "content-type": "application/json"},
    )
    assert r.status_code == 400 and "message" in r.json()["error"]
    assert stored(db) == (0, 0, 0)


def test_bad_absent_or_revoked_key_is_401(db, client, world):
    for headers in ({}, bearer("tk_pg_not-a-real-key"), {"Authorization": world.program_key}):
        r = client.post(URL, json=sale(), headers=headers)
        assert_error(r, 401, None)
        assert r.headers.get("www-authenticate") == "Bearer"
    with db.write() as conn:
        key_id = conn.execute(
            select(tables.api_keys.c.id).where(
                tables.api_keys.c.key_hash == hash_key(world.program_key)
            )
        ).scalar_one()
        revoke_key(conn, key_id)
    assert_error(post(client, world, sale()), 401, None)
    assert stored(db) == (0, 0, 0)


def test_non_program_keys_are_403(db, client, world):
    for key in (world.merchant_key, world.affiliate_key, world.operator_key):
        assert_error(client.post(URL, json=sale(), headers=bearer(key)), 403, None)
    assert stored(db) == (0, 0, 0)
