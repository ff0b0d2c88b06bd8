"""Conversion lifecycle, Idempotency-Key and the lock-period approvals (spec section 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from factories.http import assert_error, bearer, click, count, post, read_back, row_of, sale, stored
from factories.world import World, make_world
from tuike.services.keys import hash_key, revoke_key
from tuike.storage import tables
from tuike.workers.approvals import approve_due

URL = "/api/v1/conversions"


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


# --- lifecycle -----------------------------------------------------------------------


def test_pending_approved_refunded(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    created = post(client, world, sale(click_id=click_id)).json()
    r = post(client, world, {"order_id": "A-1", "status": "approved"})
    assert r.status_code == 200, r.text
    assert r.json() == {**created, "status": "approved"}
    again = post(client, world, {"order_id": "A-1", "status": "approved"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    r = post(client, world, {"order_id": "A-1", "status": "refunded"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["commission"], r.json()["refunded_amount"]) == (
        "refunded",
        "0.00",
        "199.00",
    )
    assert read_back(client, world, created["conversion_id"])["status"] == "refunded"
    assert stored(db) == (1, 3, 1)
    r = tables.conversion_rollups.c
    with db.read() as conn:
        by_status = dict(
            conn.execute(select(r.status, func.sum(r.conversions)).group_by(r.status)).all()
        )
        commission = conn.execute(select(func.sum(r.commission_minor))).scalar()
    assert by_status == {"pending": 0, "approved": 0, "refunded": 1}
    assert commission == 0


def test_partial_refunds_carry_the_cumulative_amount(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    assert post(client, world, sale(click_id=click_id)).json()["commission"] == "19.90"
    r = post(client, world, {"order_id": "A-1", "status": "refunded", "refund_amount": "99.00"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["commission"], body["refunded_amount"]) == (
        "pending",
        "10.00",
        "99.00",
    )
    again = post(client, world, {"order_id": "A-1", "status": "refunded", "refund_amount": "99.00"})
    assert again.json() == {**body, "duplicate": True}
    r = post(client, world, {"order_id": "A-1", "status": "approved"})
    assert (r.json()["status"], r.json()["commission"]) == ("approved", "10.00")
    r = post(client, world, {"order_id": "A-1", "status": "refunded", "refund_amount": "199.00"})
    assert (r.json()["status"], r.json()["commission"], r.json()["refunded_amount"]) == (
        "refunded",
        "0.00",
        "199.00",
    )
    assert stored(db) == (1, 4, 1)


def test_illegal_moves_answer_409_and_change_nothing(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    approved = post(client, world, sale("AP", click_id=click_id, status="approved")).json()
    assert approved["status"] == "approved"
    post(client, world, {"order_id": "AP", "status": "refunded", "refund_amount": "50.00"})
    rejected = post(client, world, sale("RJ", click_id=click_id, status="rejected")).json()
    assert (rejected["status"], rejected["commission"]) == ("rejected", "0.00")
    before = {
        c: read_back(client, world, c)
        for c in (approved["conversion_id"], rejected["conversion_id"])
    }
    events = count(db, tables.conversion_events)
    for body in [
        {"order_id": "RJ", "status": "approved"},
        {"order_id": "RJ", "status": "pending"},
        {"order_id": "RJ", "status": "refunded"},
        {"order_id": "AP", "status": "pending"},
        {"order_id": "AP", "status": "rejected"},
        {"order_id": "AP", "status": "refunded", "refund_amount": "199.01"},
        {"order_id": "AP", "status": "refunded", "refund_amount": "49.00"},
        {"order_id": "NONE", "status": "refunded"},
    ]:
        assert_error(post(client, world, body), 409, None)
    after = {c: read_back(client, world, c) for c in before}
    assert after == before
    assert after[approved["conversion_id"]]["commission"] == "14.90"  # 19.90 * 149 / 199
    assert count(db, tables.conversion_events) == events
    assert stored(db)[0] == 2


def test_idempotency_key_replays_the_first_answer(db, client, world):
    click_id = click(client, world.link.code, aff_click_id="AFF-1")
    body = sale(click_id=click_id)
    first = post(client, world, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    replay = post(client, world, body, **{"Idempotency-Key": "k-1"})
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    r = post(client, world, {**body, "amount": "299.00"}, **{"Idempotency-Key": "k-1"})
    assert_error(r, 422, "Idempotency-Key")
    assert stored(db) == (1, 1, 1)
    assert row_of(db, "A-1").amount_minor == 19900
    # Another caller may use the same key for its own request.
    other = client.post(
        URL,
        json=sale("B-1"),
        headers={**bearer(world.other_program_key), "Idempotency-Key": "k-1"},
    )
    assert other.status_code == 201
    # Other POSTs honour the header too.
    coupon = {"program_id": world.program.id, "affiliate_id": world.affiliate_id, "code": "IDEM"}
    for _ in range(2):
        r = client.post(
            "/api/v1/coupons",
            json=coupon,
            headers={**bearer(world.merchant_key), "Idempotency-Key": "coupon-1"},
        )
        assert r.status_code == 201, r.text
    assert count(db, tables.coupons) == 1
    links = count(db, tables.links)
    answers = [
        client.post(
            "/api/v1/links",
            json={"program_id": world.program.id, "sub1": "idem"},
            headers={**bearer(world.affiliate_key), "Idempotency-Key": "link-1"},
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert count(db, tables.links) == links + 1


def test_approve_due_approves_pending_conversions_past_the_lock_period(db, client, world):
    coupon = {"program_id": world.program.id, "affiliate_id": world.affiliate_id, "code": "LOCK"}
    assert client.post(
        "/api/v1/coupons", json=coupon, headers=bearer(world.merchant_key)
    ).is_success
    now = datetime.now(UTC)
    old = post(
        client,
        world,
        sale("OLD", coupon="LOCK", occurred_at=(now - timedelta(days=16)).isoformat()),
    ).json()
    young = post(
        client,
        world,
        sale("YOUNG", coupon="LOCK", occurred_at=(now - timedelta(days=14)).isoformat()),
    ).json()
    assert old["status"] == young["status"] == "pending"
    # The lock period runs from when tuike recorded the order, not from the occurred_at
    # the client sent: backdated orders still wait out the refund window.
    assert approve_due(db) == 0
    with db.write() as conn:
        conn.execute(
            update(tables.conversions)
            .where(tables.conversions.c.order_id == "OLD")
            .values(created_at=now - timedelta(days=16))
        )
        conn.execute(
            update(tables.conversions)
            .where(tables.conversions.c.order_id == "YOUNG")
            .values(created_at=now - timedelta(days=14))
        )
    assert approve_due(db) == 1
    assert read_back(client, world, old["conversion_id"]) == {**old, "status": "approved"}
    assert read_back(client, world, young["conversion_id"]) == young
    with db.read() as conn:
        sources = conn.execute(
            select(tables.conversion_events.c.source).where(
                tables.conversion_events.c.conversion_id == old["conversion_id"]
            )
        ).scalars()
        assert sorted(sources) == ["api", "lock"]
    assert approve_due(db) == 0


def test_idempotent_replay_still_needs_a_valid_key(db, client, world):
    headers = {**bearer(world.program_key), "Idempotency-Key": "before-revocation"}
    first = client.post(URL, json=sale(), headers=headers)
    assert first.status_code == 201
    with db.write() as conn:
        key_id = conn.execute(
            select(tables.api_keys.c.id).where(
                tables.api_keys.c.key_hash == hash_key(world.program_key)
            )
        ).scalar_one()
        revoke_key(conn, key_id)
    r = client.post(URL, json=sale(), headers=headers)
    assert_error(r, 401, None)
    assert "idempotent-replayed" not in r.headers


def test_a_new_api_key_is_never_kept_in_clear_for_replays(db, client, world):
    headers = {**bearer(world.operator_key), "Idempotency-Key": "new-key-1"}
    body = {"role": "merchant", "owner_id": world.merchant_id, "name": "ci"}
    r = client.post("/api/v1/keys", json=body, headers=headers)
    assert r.status_code == 201, r.text
    raw = r.json()["key"]
    with db.read() as conn:
        for table in tables.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert raw not in repr(tuple(row)), f"raw API key stored in {table.name}"
    # A retry never shows the key a second time.
    again = client.post("/api/v1/keys", json=body, headers=headers)
    assert raw not in again.text
