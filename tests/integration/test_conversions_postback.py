"""Legacy GET postback /pb (spec section 3) and the browser pixel /px.gif (section 4)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from factories.http import assert_error, bearer, click, count, patch_program, row_of
from factories.world import World, make_world
from tuike.services.keys import hash_key, revoke_key
from tuike.storage import tables

GIF_MAGIC = (b"GIF87a", b"GIF89a")


# --- helpers -------------------------------------------------------------------------


def stored(db: Any) -> tuple[int, int, int]:
    """Return (conversions, conversion events, conversion rollup rows)."""
    return (
        count(db, tables.conversions),
        count(db, tables.conversion_events),
        count(db, tables.conversion_rollups),
    )


def pb_query(key: str, order_id: str = "PB-1", **fields: str) -> str:
    params = {
        "key": key,
        "event": "sale",
        "order_id": order_id,
        "amount": "199.00",
        "currency": "CNY",
        **fields,
    }
    return urlencode(params)


def sign(query: str, secret: str) -> str:
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def secret_of(client: Any, w: World) -> str:
    r = client.get(f"/api/v1/programs/{w.program.id}", headers=bearer(w.merchant_key))
    assert r.status_code == 200, r.text
    secret = r.json()["postback_secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    return secret


def pixel(client: Any, w: World, order_id: str = "PX-1", **fields: str) -> Any:
    params = {
        "program": w.program.public_id,
        "event": "sale",
        "order_id": order_id,
        "amount": "199.00",
        "currency": "CNY",
        **fields,
    }
    return client.get(f"/px.gif?{urlencode(params)}")


def assert_gif(r: Any) -> None:
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert r.content.startswith(GIF_MAGIC)
    assert len(r.content) < 100
    assert r.headers["cache-control"] == "no-store"


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


# --- GET /pb -------------------------------------------------------------------------


def test_postback_records_like_the_api(db, client, world):
    click_id = click(client, world.link.code)
    r = client.get(f"/pb?{pb_query(world.program_key, click_id=click_id)}")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["attributed"], body["affiliate_id"], body["commission"]) == (
        "pending",
        True,
        world.affiliate_id,
        "19.90",
    )
    assert body["currency"] == "CNY" and "duplicate" not in body
    assert row_of(db, "PB-1").source == "postback"
    again = client.get(f"/pb?{pb_query(world.program_key, click_id=click_id)}")
    assert again.status_code == 200 and again.json() == {**body, "duplicate": True}
    moved = client.get(f"/pb?{pb_query(world.program_key, status='approved')}")
    assert moved.status_code == 200 and moved.json()["status"] == "approved"
    refund = client.get(
        f"/pb?{pb_query(world.program_key, status='refunded', refund_amount='99.00')}"
    )
    assert refund.json()["commission"] == "10.00"
    illegal = client.get(f"/pb?{pb_query(world.program_key, status='pending')}")
    assert_error(illegal, 409, None)
    assert stored(db)[:2] == (1, 3)


def test_postback_refuses_bad_keys_and_fields_and_stores_nothing(db, client, world):
    with db.write() as conn:
        key_id = conn.execute(
            select(tables.api_keys.c.id).where(
                tables.api_keys.c.key_hash == hash_key(world.other_program_key)
            )
        ).scalar_one()
        revoke_key(conn, key_id)
    for key in ("", "tk_pg_nope", world.merchant_key, world.affiliate_key, world.other_program_key):
        assert_error(client.get(f"/pb?{pb_query(key)}"), 401, "key")
    r = client.get("/pb?event=sale&order_id=X&amount=1.00")
    assert_error(r, 401, "key")
    foreign = click(client, world.other_link.code)
    for fields, field in [
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"event": "purchase"}, "event"),
        ({"order_id": ""}, "order_id"),
        ({"click_id": foreign}, "click_id"),
        ({"occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at"),
    ]:
        assert_error(client.get(f"/pb?{pb_query(world.program_key, **fields)}"), 400, field)
    assert stored(db) == (0, 0, 0)


def test_required_signature(db, client, world):
    patch_program(client, world, require_signature=True)
    secret = secret_of(client, world)
    query = pb_query(world.program_key, "SIG-1")
    assert_error(client.get(f"/pb?{query}"), 401, "sig")
    assert_error(client.get(f"/pb?{query}&sig={'0' * 64}"), 401, "sig")
    assert_error(client.get(f"/pb?{query}&sig="), 401, "sig")
    # Signed with another program's secret, or over another query.
    assert_error(client.get(f"/pb?{query}&sig={sign(query, 'x' * 64)}"), 401, "sig")
    tampered = query.replace("amount=199.00", "amount=999.00")
    assert_error(client.get(f"/pb?{tampered}&sig={sign(query, secret)}"), 401, "sig")
    assert stored(db) == (0, 0, 0)

    r = client.get(f"/pb?{query}&sig={sign(query, secret)}")
    assert r.status_code == 201, r.text
    assert r.json()["order_id"] == "SIG-1"
    # The sig may stand anywhere in the query and in upper case.
    second = pb_query(world.program_key, "SIG-2")
    head, tail = second.split("&", 1)
    r = client.get(f"/pb?{head}&sig={sign(second, secret).upper()}&{tail}")
    assert r.status_code == 201, r.text
    assert stored(db)[0] == 2


def test_signature_is_checked_when_present_even_if_not_required(db, client, world):
    secret = secret_of(client, world)
    query = pb_query(world.program_key, "OPT-1")
    assert_error(client.get(f"/pb?{query}&sig=deadbeef"), 401, "sig")
    assert stored(db) == (0, 0, 0)
    assert client.get(f"/pb?{query}&sig={sign(query, secret)}").status_code == 201
    assert client.get(f"/pb?{pb_query(world.program_key, 'OPT-2')}").status_code == 201


def test_postback_secret_is_shown_to_the_programs_merchant_only(client, world):
    assert secret_of(client, world)
    r = client.get(f"/api/v1/programs/{world.program.id}", headers=bearer(world.affiliate_key))
    assert r.status_code == 200 and r.json()["postback_secret"] is None
    r = client.get("/api/v1/programs", headers=bearer(world.affiliate_key))
    assert all(p["postback_secret"] is None for p in r.json())
    r = client.get(f"/api/v1/programs/{world.other_program.id}", headers=bearer(world.merchant_key))
    assert r.status_code == 404


# --- GET /px.gif ---------------------------------------------------------------------


def test_pixel_attributes_by_the_click_cookie(db, client, world):
    click_id = click(client, world.link.code)
    assert client.cookies.get("tk_click") == click_id
    r = pixel(client, world)
    assert_gif(r)
    row = row_of(db, "PX-1")
    assert (row.source, row.attribution, row.affiliate_id, row.click_id) == (
        "pixel",
        "cookie",
        world.affiliate_id,
        click_id,
    )
    assert (row.status, row.commission_minor) == ("pending", 1990)
    # A second firing of the same pixel (reload of the thank-you page) stores nothing new.
    assert_gif(pixel(client, world))
    assert stored(db)[:2] == (1, 1)


def test_pixel_click_id_parameter_works_without_a_cookie(db, client, world):
    click_id = click(client, world.link.code)
    client.cookies.clear()
    assert_gif(pixel(client, world, click_id=click_id))
    row = row_of(db, "PX-1")
    assert (row.attribution, row.affiliate_id, row.source) == (
        "click_id",
        world.affiliate_id,
        "pixel",
    )


def test_pixel_cookie_of_another_program_does_not_attribute(db, client, world):
    click(client, world.other_link.code)
    assert_gif(pixel(client, world))
    row = row_of(db, "PX-1")
    assert (row.affiliate_id, row.commission_minor) == (None, 0)


def test_pixel_pending_review_starts_pending_whatever_is_sent(db, client, world):
    click(client, world.link.code)
    assert_gif(pixel(client, world, "OPEN", status="approved"))
    assert row_of(db, "OPEN").status == "approved"
    patch_program(client, world, pixel_pending_review=True)
    assert_gif(pixel(client, world, "REVIEW", status="approved"))
    row = row_of(db, "REVIEW")
    assert (row.status, row.source, row.commission_minor) == ("pending", "pixel", 1990)


def test_pixel_cannot_move_a_conversion_along_its_lifecycle(db, client, world):
    click_id = click(client, world.link.code)
    r = client.post(
        "/api/v1/conversions",
        json={"order_id": "S2S", "amount": "199.00", "click_id": click_id},
        headers=bearer(world.program_key),
    )
    assert r.status_code == 201
    for status in ("rejected", "refunded", "approved"):
        assert_gif(pixel(client, world, "S2S", status=status))
    row = row_of(db, "S2S")
    assert (row.status, row.commission_minor, row.source) == ("pending", 1990, "api")
    assert stored(db)[:2] == (1, 1)


def test_pixel_with_bad_input_answers_the_gif_and_stores_nothing(db, client, world):
    foreign = click(client, world.other_link.code)
    for fields in [
        {"program": "prg_doesnotexist"},
        {"program": "prg_\x00"},  # a NUL reaches the database query
        {"program": ""},
        {"amount": "abc"},
        {"amount": "-1.00"},
        {"currency": "EUR"},
        {"currency": "ZZZ"},
        {"event": "nope"},
        {"order_id": ""},
        {"click_id": foreign},
        {"status": "refunded"},
        {"occurred_at": "2099-01-01T00:00:00Z"},
    ]:
        assert_gif(pixel(client, world, **fields))
    assert_gif(client.get("/px.gif"))
    assert stored(db) == (0, 0, 0)
