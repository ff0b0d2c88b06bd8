"""The conversion-time fraud rules end to end: evidence in, score and reasons stored, and
what the program's settings make of them (hold, reject), over the API, /pb and the pixel."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories.http import (
    assert_error,
    bearer,
    click,
    patch_program,
    post,
    row_of,
    sale,
    snapshot,
)
from factories.money import assert_books_hold
from factories.portal import login, make_user
from factories.world import World, make_world
from tuike.domain import ledger as L
from tuike.services import ledger, payouts
from tuike.services.conversions import approve_due_conversions
from tuike.storage import tables
from tuike.web.app import create_app

IP = "203.0.113.9"
UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0"


@pytest.fixture
def settings(settings: Any) -> Any:
    """The test settings with the rule ctit_too_short back on (tests/conftest.py turns it off)."""
    return settings.model_copy(
        update={
            "fraud_ctit_sale_seconds": 5,
            "fraud_ctit_install_seconds": 15,
            "fraud_ctit_other_seconds": 3,
        }
    )


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db, lock_days=0)


def clicked_at(db: Any, click_id: str) -> datetime:
    with db.read() as conn:
        return conn.execute(
            select(tables.clicks.c.clicked_at).where(tables.clicks.c.id == click_id)
        ).scalar_one()


def after(db: Any, click_id: str, seconds: float) -> str:
    """Return the ISO time ``seconds`` after a click."""
    return (clicked_at(db, click_id) + timedelta(seconds=seconds)).isoformat()


def visit(client: Any, db: Any, w: World, seconds: float = 60) -> dict[str, str]:
    """Click affiliate A's link; return the click id and a time a minute later (no CTIT)."""
    click_id = click(client, w.link.code)
    return {"click_id": click_id, "occurred_at": after(db, click_id, seconds)}


def rules_of(body_or_row: Any) -> list[str]:
    reasons = body_or_row.fraud_reasons if hasattr(body_or_row, "fraud_reasons") else None
    return [r["rule"] for r in reasons or ()]


def balance(db: Any, affiliate_id: int, kind: str) -> int:
    with db.read() as conn:
        return ledger.balance(conn, L.Account(L.AFFILIATE, affiliate_id, kind, "CNY"))


def approve_all(db: Any, days: int = 60) -> int:
    with db.write() as conn:
        return approve_due_conversions(conn, now=datetime.now().astimezone() + timedelta(days))


def as_browser(db: Any, settings: Any, ip: str = IP) -> TestClient:
    app = create_app(settings, db)
    return TestClient(app, client=(ip, 40000), headers={"User-Agent": UA}, follow_redirects=False)


def sign_in_from(db: Any, settings: Any, w: World, ip: str = IP) -> None:
    """Affiliate A's user signs in to the portal from ``ip`` with the phone's browser."""
    email = make_user(db, "affiliate", w.affiliate_id, f"anna-{ip}@example.com")
    with as_browser(db, settings, ip) as c:
        assert login(c, email).status_code == 303


# --- click to conversion time ----------------------------------------------------------


def test_a_sale_two_seconds_after_its_click_is_held_and_never_paid(db, client, world):
    click_id = click(client, world.link.code)
    r = post(client, world, sale("FAST", click_id=click_id, occurred_at=after(db, click_id, 2)))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["held"], body["fraud_score"]) == ("pending", True, 60)
    row = row_of(db, "FAST")
    assert row.needs_review and rules_of(row) == ["ctit_too_short"]
    assert "2.0 s after its click (under 5.0 s)" in row.fraud_reasons[0]["evidence"]
    with db.read() as conn:
        reason = conn.execute(select(tables.conversion_events.c.reason)).scalar_one()
    assert reason == "held for review (score 60): ctit_too_short"
    # Reserved (pending) but never approved by the lock period, never available, never paid.
    assert balance(db, world.affiliate_id, L.PENDING) == 1990
    assert approve_all(db) == 0
    with db.write() as conn:
        batch = payouts.create_batch(conn, currency="CNY", minimum_minor=1)
    assert batch.items == 0
    assert balance(db, world.affiliate_id, L.AVAILABLE) == 0
    assert row_of(db, "FAST").status == "pending"
    assert_books_hold(db)


def test_a_sale_a_minute_after_its_click_is_not_held(db, client, world):
    click_id = click(client, world.link.code)
    r = post(client, world, sale("SLOW", click_id=click_id, occurred_at=after(db, click_id, 60)))
    body = r.json()
    assert (body["status"], body["held"], body["fraud_score"]) == ("pending", False, 0)
    assert row_of(db, "SLOW").fraud_reasons is None
    assert approve_all(db) == 1


@pytest.mark.parametrize(
    ("event", "seconds", "held"),
    [("install", 10, True), ("install", 20, False), ("lead", 2, True), ("lead", 10, False)],
)
def test_each_kind_of_event_has_its_own_threshold(db, client, world, event, seconds, held):
    click_id = click(client, world.link.code)
    body = {"event": event, "order_id": "E-1", "click_id": click_id}
    r = post(client, world, body | {"occurred_at": after(db, click_id, seconds)})
    assert r.status_code == 201, r.text
    assert r.json()["held"] is held


def test_a_held_conversion_starts_pending_whatever_was_sent_and_the_api_cannot_approve_it(
    db, client, world
):
    click_id = click(client, world.link.code)
    body = sale("FAST", click_id=click_id, occurred_at=after(db, click_id, 1), status="approved")
    r = post(client, world, body)
    assert (r.json()["status"], r.json()["held"]) == ("pending", True)
    before = snapshot(db)
    r = post(client, world, {"order_id": "FAST", "status": "approved"})
    assert_error(r, 409)
    assert "held for review" in r.json()["error"]["message"]
    r = client.get(f"/pb?key={world.program_key}&order_id=FAST&status=approved")
    assert_error(r, 409)
    assert snapshot(db) == before
    # The merchant may still reject or refund it.
    r = post(client, world, {"order_id": "FAST", "status": "rejected"})
    assert r.json()["status"] == "rejected" and r.json()["held"] is False
    assert balance(db, world.affiliate_id, L.PENDING) == 0
    assert_books_hold(db)


def test_racing_twins_of_a_held_approved_sale_never_approve_it(db, client, world):
    click_id = click(client, world.link.code)
    body = sale("TWIN", click_id=click_id, occurred_at=after(db, click_id, 1), status="approved")
    barrier = threading.Barrier(8, timeout=30)

    def send(_: int) -> int:
        barrier.wait()
        return post(client, world, body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = Counter(pool.map(send, range(8)))
    # One twin records it (held, pending); the others ask to approve a held one: 409.
    assert codes == {201: 1, 409: 7}, codes
    row = row_of(db, "TWIN")
    assert (row.status, row.needs_review) == ("pending", True)
    assert balance(db, world.affiliate_id, L.AVAILABLE) == 0
    assert_books_hold(db)


def test_a_program_may_switch_a_rule_off_or_reject_at_once(db, client, world):
    patch_program(client, world, fraud_config={"disabled": ["ctit_too_short"]})
    r = post(client, world, sale("OFF", **visit(client, db, world, 1)))
    assert (r.json()["held"], r.json()["fraud_score"]) == (False, 0)
    patch_program(client, world, fraud_config={"hold_score": 40, "reject_score": 60})
    r = post(client, world, sale("REJ", **visit(client, db, world, 1)))
    body = r.json()
    assert (body["status"], body["commission"], body["held"]) == ("rejected", "0.00", False)
    with db.read() as conn:
        reasons = conn.execute(
            select(tables.conversion_events.c.reason).where(
                tables.conversion_events.c.conversion_id == body["conversion_id"]
            )
        ).scalars()
        assert list(reasons) == ["rejected by the fraud rules (score 60): ctit_too_short"]
    assert balance(db, world.affiliate_id, L.PENDING) == 1990  # OFF's reservation only
    assert_books_hold(db)


# --- self-referral -------------------------------------------------------------------


def test_a_buyer_from_the_affiliates_own_login_address_is_self_referral(
    db, client, settings, world
):
    sign_in_from(db, settings, world)
    r = post(client, world, sale("SELF", **visit(client, db, world), ip=IP))
    assert (r.json()["held"], r.json()["fraud_score"]) == (True, 80)
    row = row_of(db, "SELF")
    assert rules_of(row) == ["self_referral"]
    assert row.fraud_reasons[0]["evidence"] == (
        "the buyer's address is one the affiliate signed in from"
    )
    assert row.ip_hash.startswith("h:") and IP not in row.ip_hash
    # Another address: nothing; the same browser alone: weak evidence, not held.
    r = post(client, world, sale("OTHER", **visit(client, db, world), ip="192.0.2.1"))
    assert r.json()["fraud_score"] == 0
    r = post(client, world, sale("UA", **visit(client, db, world), user_agent=UA))
    assert (r.json()["fraud_score"], r.json()["held"]) == (40, False)


def test_the_affiliates_own_email_or_payout_account_as_customer_is_self_referral(db, client, world):
    with db.write() as conn:
        conn.execute(
            tables.affiliates.update()
            .where(tables.affiliates.c.id == world.affiliate_id)
            .values(payout_account="138 0013 8000")
        )
    for order, customer in (("E", "AFF1@example.com"), ("P", "13800138000")):
        r = post(
            client,
            world,
            sale(order, **visit(client, db, world), customer_id=customer),
        )
        assert (r.json()["held"], r.json()["fraud_score"]) == (True, 80), order
    assert "email address" in row_of(db, "E").fraud_reasons[0]["evidence"]
    assert "payout account" in row_of(db, "P").fraud_reasons[0]["evidence"]


def test_the_click_from_the_affiliates_login_address_is_self_referral(db, settings, world):
    hashed = settings.model_copy(update={"ip_storage": "hashed"})
    sign_in_from(db, hashed, world)
    with as_browser(db, hashed) as c:
        # No buyer evidence sent: the click's own address tells.
        r = post(c, world, sale("CLICKED", **visit(c, db, world)))
    assert r.json()["fraud_score"] == 80
    assert "the click's address" in row_of(db, "CLICKED").fraud_reasons[0]["evidence"]


def test_the_pixel_uses_the_browsers_own_address(db, settings, world):
    sign_in_from(db, settings, world)
    with as_browser(db, settings) as c:
        click(c, world.link.code)
        r = c.get(
            "/px.gif",
            params={
                "program": world.program.public_id,
                "order_id": "PX-SELF",
                "amount": "99.00",
                "ip": "192.0.2.200",  # ignored: the browser's own address counts
                "occurred_at": (datetime.now().astimezone() + timedelta(seconds=30)).isoformat(),
            },
        )
        assert r.status_code == 200
    row = row_of(db, "PX-SELF")
    assert (row.fraud_score, row.needs_review) == (80, True)
    assert row.device_hash.startswith("u:")


def test_the_merchants_report_replacing_a_pixels_is_screened_anew(db, client, settings, world):
    sign_in_from(db, settings, world)
    seen = visit(client, db, world)
    pixel = {"program": world.program.public_id, "order_id": "PX-1", "amount": "10.00"}
    assert client.get("/px.gif", params=pixel | seen).status_code == 200
    assert (row_of(db, "PX-1").fraud_score, row_of(db, "PX-1").source) == (0, "pixel")
    r = post(client, world, sale("PX-1", **seen, ip=IP))  # the shop knows the buyer's address
    assert r.status_code == 200, r.text
    assert (r.json()["held"], r.json()["fraud_score"]) == (True, 80)
    assert row_of(db, "PX-1").source == "api"
    assert_books_hold(db)


# --- duplicate-like orders and coupon leakage ----------------------------------------------


def test_the_same_buyer_and_amount_under_a_new_order_id_is_duplicate_like(db, client, world):
    first = sale("D-1", **visit(client, db, world), customer_id="c-77")
    assert post(client, world, first).json()["fraud_score"] == 0
    again = sale("D-2", **visit(client, db, world), customer_id="c-77")
    body = post(client, world, again).json()
    assert (body["fraud_score"], body["held"]) == (50, True)
    assert "order D-1" in row_of(db, "D-2").fraud_reasons[0]["evidence"]
    other_amount = sale("D-3", **visit(client, db, world), customer_id="c-77", amount="99.00")
    assert post(client, world, other_amount).json()["fraud_score"] == 0
    by_address = [sale(f"I-{n}", **visit(client, db, world), ip="192.0.2.55") for n in (1, 2)]
    assert [post(client, world, b).json()["fraud_score"] for b in by_address] == [0, 50]


def test_installs_from_one_carrier_address_are_not_duplicates_but_one_device_is(db, client, world):
    # Installs have no amount, and a carrier NAT puts many phones behind one address.
    installs = [
        sale(f"N-{n}", **visit(client, db, world), event="install", amount="0", ip="223.104.3.1")
        for n in (1, 2)
    ]
    assert [post(client, world, b).json()["fraud_score"] for b in installs] == [0, 0]
    same_phone = [
        sale(f"P-{n}", **visit(client, db, world), event="install", amount="0", device_id="idfa-9")
        for n in (1, 2)
    ]
    assert [post(client, world, b).json()["fraud_score"] for b in same_phone] == [0, 50]
    evidence = row_of(db, "P-2", "install").fraud_reasons[0]["evidence"]
    assert "same amount and device as order P-1" in evidence


def _coupon_for(client: Any, world: World, code: str, owner: int) -> None:
    r = client.post(
        "/api/v1/coupons",
        json={"program_id": world.program.id, "affiliate_id": owner, "code": code},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 201, r.text


def test_a_coupon_used_by_someone_who_never_clicked_its_owner_is_held(db, client, settings, world):
    _coupon_for(client, world, "ANNA10", world.affiliate_id)
    with as_browser(db, settings, "198.51.100.23") as fan:  # a follower clicks Anna's link
        assert fan.get(f"/c/{world.link.code}", headers={"user-agent": UA}).status_code == 302
    # Later the follower buys with the code, without the click id: one of Anna's audience.
    fan_order = sale("F-1", coupon="ANNA10", ip="198.51.100.23", user_agent=UA)
    assert post(client, world, fan_order).json()["fraud_score"] == 0
    # A stranger from elsewhere uses the code: it leaked (to a coupon site).
    body = post(client, world, sale("F-2", coupon="ANNA10", ip="203.0.113.9", user_agent=UA)).json()
    assert (body["fraud_score"], body["held"]) == (50, True)
    assert row_of(db, "F-2").fraud_reasons[0]["evidence"] == (
        "coupon ANNA10: the buyer's address and browser are not among the 1 clicks its owner "
        "sent the program in the 30 days before"
    )
    # Without the buyer's address and browser nothing can be said: the owner has traffic.
    assert post(client, world, sale("F-3", coupon="ANNA10")).json()["fraud_score"] == 0


def test_a_carrier_address_ties_no_coupon_buyer_to_a_click(db, client, settings, world):
    _coupon_for(client, world, "ANNA10", world.affiliate_id)
    # Six people with different phones click Anna's link behind one carrier address.
    app = create_app(settings, db)
    for n in range(6):
        with TestClient(app, client=("223.104.3.1", 40000), follow_redirects=False) as c:
            c.get(f"/c/{world.link.code}", headers={"user-agent": f"{UA} Phone/{n}"})
    buyer = sale("G-1", coupon="ANNA10", ip="223.104.3.1", user_agent=f"{UA} Phone/0")
    body = post(client, world, buyer).json()
    assert (body["fraud_score"], body["held"]) == (50, True)
    assert "shared by many browsers" in row_of(db, "G-1").fraud_reasons[0]["evidence"]


def test_a_coupon_whose_owner_sent_no_traffic_is_leakage(db, client, world):
    for code, owner in (("LEAK", world.other_affiliate_id), ("MINE", world.affiliate_id)):
        r = client.post(
            "/api/v1/coupons",
            json={"program_id": world.program.id, "affiliate_id": owner, "code": code},
            headers=bearer(world.merchant_key),
        )
        assert r.status_code == 201, r.text
    click(client, world.link.code)  # affiliate A sends traffic, affiliate B none
    leaked = post(client, world, sale("C-1", coupon="leak")).json()
    assert (leaked["affiliate_id"], leaked["attribution"]) == (world.other_affiliate_id, "coupon")
    assert (leaked["fraud_score"], leaked["held"]) == (30, False)
    assert "coupon LEAK: its owner sent 0 clicks" in row_of(db, "C-1").fraud_reasons[0]["evidence"]
    assert post(client, world, sale("C-2", coupon="MINE")).json()["fraud_score"] == 0
    patch_program(client, world, fraud_config={"hold_score": 30})
    assert post(client, world, sale("C-3", coupon="LEAK")).json()["held"] is True


# --- what callers send and see -------------------------------------------------------


def test_bad_evidence_is_refused_and_changes_nothing(db, client, world):
    click_id = click(client, world.link.code)
    before = snapshot(db)
    for fields, field in (
        ({"ip": "not-an-address"}, "ip"),
        ({"ip": "1.2.3.4.5"}, "ip"),
        ({"user_agent": "x" * 513}, "user_agent"),
        ({"device_id": "d" * 129}, "device_id"),
        ({"device_id": "a\x00b"}, "device_id"),
    ):
        assert_error(post(client, world, sale("BAD", click_id=click_id, **fields)), 400, field)
    r = client.get(f"/pb?key={world.program_key}&order_id=BAD&amount=1.00&ip=nope")
    assert_error(r, 400, "ip")
    assert snapshot(db) == before


def test_pb_carries_the_buyers_evidence(db, client, settings, world):
    sign_in_from(db, settings, world)
    query = {"key": world.program_key, "order_id": "PB-1", "amount": "10.00", "ip": IP}
    r = client.get("/pb", params=query | visit(client, db, world))
    assert r.status_code == 201, r.text
    assert (r.json()["fraud_score"], r.json()["held"]) == (80, True)


def test_affiliates_never_see_scores_or_holds(db, client, world):
    click_id = click(client, world.link.code)
    held = post(client, world, sale("FAST", click_id=click_id, occurred_at=after(db, click_id, 1)))
    conversion_id = held.json()["conversion_id"]
    mine = client.get(f"/api/v1/conversions/{conversion_id}", headers=bearer(world.affiliate_key))
    assert mine.status_code == 200
    assert mine.json()["status"] == "pending"
    assert "fraud_score" not in mine.json() and "held" not in mine.json()
    listed = client.get("/api/v1/conversions", headers=bearer(world.affiliate_key)).json()
    assert all("fraud_score" not in c and "held" not in c for c in listed)
    merchant = client.get(
        f"/api/v1/conversions/{conversion_id}", headers=bearer(world.merchant_key)
    )
    assert (merchant.json()["fraud_score"], merchant.json()["held"]) == (60, True)
    program = client.get(
        f"/api/v1/programs/{world.program.id}", headers=bearer(world.affiliate_key)
    ).json()
    assert program.get("fraud_config") is None
