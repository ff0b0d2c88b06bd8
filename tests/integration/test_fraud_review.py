"""The review queue: held conversions listed with their evidence, released or rejected by
their merchant or the operator (API and consoles), paid exactly once, tenants apart; and a
program's fraud settings (API and the Traffic quality tab)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from factories.http import assert_error, bearer, click, post, row_of, sale, snapshot
from factories.money import assert_books_hold
from factories.portal import csrf_of, login, make_user, post_form
from factories.world import World, make_world
from tuike.domain import ledger as L
from tuike.services import audit, conversions, ledger, payouts, review
from tuike.services.clock import utcnow
from tuike.services.keys import create_key
from tuike.storage import tables

API = "/api/v1/review/conversions"


def run_together(n: int, fn: Any) -> list[Any]:
    """Call fn(i) from n threads released at the same moment (as test_races does)."""
    barrier = threading.Barrier(n, timeout=30)

    def task(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(task, range(n)))


@pytest.fixture
def settings(settings: Any) -> Any:
    """The test settings with the rule ctit_too_short back on (tests/conftest.py turns it off)."""
    return settings.model_copy(update={"fraud_ctit_sale_seconds": 5})


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db, lock_days=0)


def held_sale(client: Any, db: Any, w: World, order_id: str) -> str:
    """Record a sale a second after its click: held (ctit_too_short); return its id."""
    click_id = click(client, w.link.code)
    with db.read() as conn:
        at = conn.execute(
            select(tables.clicks.c.clicked_at).where(tables.clicks.c.id == click_id)
        ).scalar_one()
    body = sale(order_id, click_id=click_id, occurred_at=(at + timedelta(seconds=1)).isoformat())
    r = post(client, w, body)
    assert r.status_code == 201 and r.json()["held"], r.text
    return r.json()["conversion_id"]


def approvals(db: Any) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count())
            .select_from(tables.ledger_transactions)
            .where(tables.ledger_transactions.c.kind == "approve")
        ).scalar_one()


def available(db: Any, affiliate_id: int) -> int:
    with db.read() as conn:
        return ledger.balance(conn, L.Account(L.AFFILIATE, affiliate_id, L.AVAILABLE, "CNY"))


def decisions(db: Any) -> dict[str, Any]:
    """What a review changes (sign-ins between the steps change sessions and marks)."""
    names = ("conversions", "conversion_events", "audit_log", "ledger_transactions")
    return {k: v for k, v in snapshot(db).items() if k in names}


def approve_due(db: Any) -> int:
    with db.write() as conn:
        return conversions.approve_due_conversions(conn, now=utcnow() + timedelta(days=1))


# --- the API -------------------------------------------------------------------------


def test_the_queue_shows_held_conversions_with_evidence_to_their_merchant(db, client, world):
    conversion_id = held_sale(client, db, world, "H-1")
    post(client, world, sale("FINE"))  # not attributed, not held
    r = client.get(API, headers=bearer(world.merchant_key))
    assert r.status_code == 200, r.text
    (item,) = r.json()
    assert (item["conversion_id"], item["order_id"], item["fraud_score"]) == (
        conversion_id,
        "H-1",
        60,
    )
    assert item["affiliate_id"] == world.affiliate_id and item["program_name"] == "Shop CPS"
    assert item["reasons"][0]["rule"] == "ctit_too_short"
    assert 0.9 <= item["seconds_after_click"] <= 1.1
    assert client.get(API, headers=bearer(world.operator_key)).json()[0]["order_id"] == "H-1"
    assert_error(client.get(API, headers=bearer(world.affiliate_key)), 403)
    assert_error(
        client.get(
            f"{API}?program_id={world.other_program.id}", headers=bearer(world.merchant_key)
        ),
        404,
    )


def test_another_merchant_never_sees_nor_decides_them(db, client, world):
    conversion_id = held_sale(client, db, world, "H-1")
    with db.write() as conn:
        other_key = create_key(
            conn, role="merchant", owner_id=world.other_program.merchant_id, name="b"
        )
    assert client.get(API, headers=bearer(other_key)).json() == []
    before = snapshot(db)
    for action, body in (("release", {}), ("reject", {"reason": "mine now"})):
        r = client.post(f"{API}/{conversion_id}/{action}", json=body, headers=bearer(other_key))
        assert_error(r, 404)
    assert snapshot(db) == before


def test_release_then_approval_pays_once(db, client, world):
    conversion_id = held_sale(client, db, world, "H-1")
    assert approve_due(db) == 0
    r = client.post(
        f"{API}/{conversion_id}/release",
        json={"reason": "known customer"},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["held"]) == ("pending", False)
    assert client.get(API, headers=bearer(world.merchant_key)).json() == []
    again = client.post(f"{API}/{conversion_id}/release", headers=bearer(world.operator_key))
    assert_error(again, 409)
    assert approve_due(db) == 1  # its lock period (0 days) has passed
    assert approve_due(db) == 0
    assert available(db, world.affiliate_id) == 1990 and approvals(db) == 1
    with db.write() as conn:
        first = payouts.create_batch(conn, currency="CNY", minimum_minor=1)
        second = payouts.create_batch(conn, currency="CNY", minimum_minor=1)
    assert (first.items, first.total_minor, second.items) == (1, 1990, 0)
    with db.read() as conn:
        (entry,) = audit.recent(conn, action="conversion.release")
    assert entry.target == f"conversion:{conversion_id}"
    assert entry.detail["reason"] == "known customer"
    assert entry.detail["rules"] == ["ctit_too_short"]
    assert_books_hold(db)


def test_reject_needs_a_reason_and_releases_the_reservation(db, client, world):
    conversion_id = held_sale(client, db, world, "H-1")
    before = snapshot(db)
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}):
        r = client.post(
            f"{API}/{conversion_id}/reject", json=body, headers=bearer(world.operator_key)
        )
        assert_error(r, 400, "reason")
    assert_error(
        client.post(
            f"{API}/NOT-A-ULID/reject", json={"reason": "r"}, headers=bearer(world.operator_key)
        ),
        404,
    )
    assert snapshot(db) == before
    r = client.post(
        f"{API}/{conversion_id}/reject",
        json={"reason": "click injection"},
        headers=bearer(world.operator_key),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["commission"]) == ("rejected", "0.00")
    with db.read() as conn:
        pending = ledger.balance(conn, L.Account(L.AFFILIATE, world.affiliate_id, L.PENDING, "CNY"))
        events = conn.execute(
            select(tables.conversion_events.c.source, tables.conversion_events.c.reason).where(
                tables.conversion_events.c.conversion_id == conversion_id
            )
        ).all()
        (entry,) = audit.recent(conn, action="conversion.reject")
    assert pending == 0
    assert [tuple(e) for e in events][-1] == ("operator", "click injection")
    assert entry.actor.startswith("key:")
    assert_error(
        client.post(f"{API}/{conversion_id}/release", headers=bearer(world.operator_key)), 409
    )
    assert_books_hold(db)


def test_concurrent_releases_and_approvals_pay_once(db, client, world):
    conversion_id = held_sale(client, db, world, "RACE")

    def release(i: int) -> int:
        r = client.post(
            f"{API}/{conversion_id}/release",
            json={"reason": f"reviewer {i}"},
            headers=bearer(world.merchant_key if i % 2 else world.operator_key),
        )
        return r.status_code

    assert Counter(run_together(6, release)) == {200: 1, 409: 5}

    def approve(i: int) -> Any:
        try:
            if i % 3 == 0:
                return approve_due(db)
            if i % 3 == 1:
                with db.write() as conn:
                    conversions.review_conversion(
                        conn, conversion_id, "approved", reason="", by="merchant"
                    )
                return "reviewed"
            return post(client, world, {"order_id": "RACE", "status": "approved"}).status_code
        except Exception as exc:  # a loser of the compare-and-set
            return type(exc).__name__

    run_together(6, approve)
    assert row_of(db, "RACE").status == "approved"
    assert approvals(db) == 1 and available(db, world.affiliate_id) == 1990
    with db.read() as conn:
        assert len(audit.recent(conn, action="conversion.release")) == 1
    assert_books_hold(db)


def test_the_service_lists_pages_of_the_queue(db, client, world):
    ids_ = [held_sale(client, db, world, f"H-{n}") for n in range(3)]
    with db.read() as conn:
        first = review.held_conversions(conn, limit=2)
        rest = review.held_conversions(conn, limit=2, before_id=first[-1].id)
        none = review.held_conversions(conn, program_ids=[world.other_program.id])
    assert [h.id for h in first + rest] == sorted(ids_, reverse=True)
    assert none == []


# --- the consoles --------------------------------------------------------------------


def test_the_merchant_console_releases_and_another_merchant_sees_nothing(db, client, world):
    conversion_id = held_sale(client, db, world, "H-1")
    make_user(db, "merchant", world.merchant_id, "boss@example.com")
    make_user(db, "merchant", world.other_program.merchant_id, "rival@example.com")
    make_user(db, "merchant", world.merchant_id, "viewer@example.com", member_role="analyst")
    assert login(client, "rival@example.com").status_code == 303
    page = client.get("/merchant/review")
    assert page.status_code == 200 and "H-1" not in page.text
    before = decisions(db)
    r = client.post(
        f"/merchant/review/{conversion_id}",
        data={"action": "release", "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 404 and decisions(db) == before
    client.cookies.clear()
    assert login(client, "viewer@example.com").status_code == 303
    page = client.get("/merchant/review")
    assert "H-1" in page.text and "ctit_too_short" not in page.text  # rule titles, not codes
    r = client.post(
        f"/merchant/review/{conversion_id}",
        data={"action": "release", "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 403 and decisions(db) == before  # analysts only read
    client.cookies.clear()
    assert login(client, "boss@example.com").status_code == 303
    page = client.get("/merchant/review")
    assert "Converted too soon after the click" in page.text
    r = client.post(
        f"/merchant/review/{conversion_id}", data={"action": "reject", "csrf": csrf_of(page.text)}
    )
    assert r.status_code == 400 and decisions(db) == before  # a rejection needs a reason
    r = post_form(
        client, "/merchant/review", f"/merchant/review/{conversion_id}", {"action": "release"}
    )
    assert (r.status_code, r.headers["location"]) == (303, "/merchant/review?done=release")
    assert not row_of(db, "H-1").needs_review
    assert "Released." in client.get(r.headers["location"]).text


def test_the_operator_console_rejects_with_a_reason(db, client, world):
    conversion_id = held_sale(client, db, world, "H-1")
    make_user(db, "operator", None, "op@example.com")
    assert login(client, "op@example.com").status_code == 303
    page = client.get("/operator/review")
    assert page.status_code == 200 and "H-1" in page.text and "/operator/review" in page.text
    r = post_form(
        client,
        "/operator/review",
        f"/operator/review/{conversion_id}",
        {"action": "reject", "reason": "self-referral ring"},
    )
    assert r.status_code == 303
    assert row_of(db, "H-1").status == "rejected"
    r = post_form(
        client, "/operator/review", f"/operator/review/{conversion_id}", {"action": "release"}
    )
    assert r.status_code == 409  # nothing to release any more


# --- a program's fraud settings ------------------------------------------------------------


def test_fraud_settings_over_the_api(db, client, world):
    url = f"/api/v1/programs/{world.program.id}"
    r = client.patch(
        url,
        json={"fraud_config": {"hold_score": 70, "disabled": ["coupon_leakage"]}},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["fraud_config"] == {
        "target_countries": [],
        "invalid_click_score": 60,
        "hold_score": 70,
        "reject_score": None,
        "disabled": ["coupon_leakage"],
    }
    before = snapshot(db)
    for bad, field in (
        ({"hold_score": 0}, "fraud_config.hold_score"),
        ({"reject_score": "90"}, "fraud_config.reject_score"),
        ({"disabled": ["nope"]}, "fraud_config.disabled"),
        ({"mystery": 1}, "fraud_config"),
    ):
        r = client.patch(url, json={"fraud_config": bad}, headers=bearer(world.merchant_key))
        assert_error(r, 400, field)
    assert snapshot(db) == before
    created = client.post(
        "/api/v1/programs",
        json={
            "name": "Held",
            "landing_url": "https://h.example/",
            "commission_plan": {"cps_percent": "5"},
            "fraud_config": {"reject_score": 95},
        },
        headers=bearer(world.merchant_key),
    )
    assert created.status_code == 201, created.text
    assert created.json()["fraud_config"]["reject_score"] == 95
    assert (
        client.patch(url, json={"fraud_config": None}, headers=bearer(world.merchant_key)).json()[
            "fraud_config"
        ]["hold_score"]
        == 50
    )


def test_the_traffic_quality_tab(db, client, world):
    held_sale(client, db, world, "H-1")
    make_user(db, "merchant", world.merchant_id, "boss@example.com")
    assert login(client, "boss@example.com").status_code == 303
    path = f"/merchant/programs/{world.program.id}/quality"
    page = client.get(path)
    assert page.status_code == 200
    assert "duplicate_like_order" in page.text and "TUIKE_FRAUD_CTIT_SALE_SECONDS" in page.text
    assert 'data-testid="held-link"' in page.text
    before = snapshot(db)
    for bad in ({"hold_score": "abc"}, {"hold_score": "0"}, {"target_countries": "China"}):
        r = post_form(client, path, path, {"hold_score": "50", **bad})
        assert r.status_code == 400, bad
    r = post_form(client, path, path, {"hold_score": "50", "disabled": "nope"})
    assert r.status_code == 400
    assert snapshot(db) == before
    r = post_form(
        client,
        path,
        path,
        {
            "hold_score": "40",
            "reject_score": "90",
            "invalid_click_score": "70",
            "target_countries": "cn, hk",
            "disabled": "coupon_leakage",
        },
    )
    assert r.status_code == 200 and "Saved." in r.text
    with db.read() as conn:
        stored = conn.execute(
            select(tables.programs.c.fraud_config).where(tables.programs.c.id == world.program.id)
        ).scalar_one()
        (entry,) = audit.recent(conn, action="program.fraud_config")
    assert stored == {
        "target_countries": ["CN", "HK"],
        "invalid_click_score": 70,
        "hold_score": 40,
        "reject_score": 90,
        "disabled": ["coupon_leakage"],
    }
    assert entry.detail["now"] == stored
    assert datetime.fromisoformat(str(entry.at)) is not None
