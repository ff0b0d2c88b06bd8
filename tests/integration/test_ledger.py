"""The ledger follows every conversion move with balanced, reconcilable postings."""

from __future__ import annotations

import os
import random
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from factories.http import bearer, count
from factories.money import a_click, assert_books_hold, send
from factories.server import BIN
from factories.world import World, make_world
from tuike.domain import ledger as L
from tuike.domain.errors import Conflict, DomainError
from tuike.services import ledger
from tuike.storage import tables

D = Decimal


def books(db: Any, w: World) -> dict[str, D]:
    """The balances that matter, as their owners read them (CNY)."""
    with db.read() as conn:
        m = ledger.balances(conn, L.MERCHANT, w.merchant_id).get("CNY", {})
        a = ledger.balances(conn, L.AFFILIATE, w.affiliate_id).get("CNY", {})
        p = ledger.balances(conn, L.PLATFORM, L.PLATFORM_ID).get("CNY", {})
    zero = D("0.00")
    return {
        "merchant_funds": m.get("funds", zero),
        "merchant_reserved": m.get("commissions_payable", zero),
        "affiliate_pending": a.get("pending", zero),
        "affiliate_available": a.get("available", zero),
        "platform_fees": p.get("fee_revenue", zero),
    }


def with_fee(db: Any, rate: str, mode: str) -> World:
    return make_world(db, fee_rate=rate, fee_mode=mode)


def test_the_lifecycle_posts_reserve_approve_and_pro_rata_refunds_with_the_fee_on_top(db):
    w = with_fee(db, "0.10", "on_top")
    click_id = a_click(db, w)
    send(db, w, order_id="L-1", amount="199.00", click_id=click_id)
    # 10 % of 199.00 = 19.90 commission; fee 1.99 on top: the merchant reserves 21.89.
    assert books(db, w) == {
        "merchant_funds": D("-21.89"),
        "merchant_reserved": D("21.89"),
        "affiliate_pending": D("19.90"),
        "affiliate_available": D("0.00"),
        "platform_fees": D("0.00"),
    }
    assert_books_hold(db)

    send(db, w, order_id="L-1", status="approved")
    assert books(db, w) == {
        "merchant_funds": D("-21.89"),
        "merchant_reserved": D("0.00"),
        "affiliate_pending": D("0.00"),
        "affiliate_available": D("19.90"),
        "platform_fees": D("1.99"),
    }

    # 99.00 of 199.00 refunded: commission 19.90 x 100/199 = 10.00, fee 1.00.
    send(db, w, order_id="L-1", status="refunded", refund_amount="99.00")
    assert books(db, w) == {
        "merchant_funds": D("-11.00"),
        "merchant_reserved": D("0.00"),
        "affiliate_pending": D("0.00"),
        "affiliate_available": D("10.00"),
        "platform_fees": D("1.00"),
    }
    send(db, w, order_id="L-1", status="refunded")
    assert set(books(db, w).values()) == {D("0.00")}
    with db.read() as conn:
        kinds = conn.execute(
            select(tables.ledger_transactions.c.kind).order_by(tables.ledger_transactions.c.id)
        ).scalars()
        assert list(kinds) == ["reserve", "approve", "refund_partial", "refund"]
    assert_books_hold(db)


def test_a_deducted_fee_comes_out_of_the_affiliates_share(db):
    w = with_fee(db, "0.10", "deducted")
    result = send(
        db, w, order_id="D-1", amount="199.00", click_id=a_click(db, w), status="approved"
    )
    assert (result.body["service_fee"], result.body["fee_mode"]) == ("1.99", "deducted")
    b = books(db, w)
    assert (b["merchant_funds"], b["affiliate_available"], b["platform_fees"]) == (
        D("-19.90"),
        D("17.91"),
        D("1.99"),
    )
    assert_books_hold(db)


def test_a_rejected_conversion_releases_its_reservation(db):
    w = make_world(db)
    send(db, w, order_id="R-1", amount="50.00", click_id=a_click(db, w))
    send(db, w, order_id="R-1", status="rejected")
    assert set(books(db, w).values()) == {D("0.00")}
    assert count(db, tables.ledger_transactions) == 2
    assert_books_hold(db)


def test_a_refund_after_payout_is_clawed_back_from_the_affiliates_balance(db):
    w = make_world(db)
    send(db, w, order_id="C-1", amount="100.00", click_id=a_click(db, w), status="approved")
    cur = "CNY"
    with db.write() as conn:  # the affiliate is paid the 10.00 earned
        ledger.post(
            conn,
            L.Posting(
                key="payout:test",
                kind="payout",
                currency=cur,
                entries=(
                    (L.Account(L.AFFILIATE, w.affiliate_id, L.AVAILABLE, cur), 1000),
                    (L.Account(L.PLATFORM, L.PLATFORM_ID, L.PAYOUT_CLEARING, cur), -1000),
                ),
            ),
        )
    send(db, w, order_id="C-1", status="refunded")
    b = books(db, w)
    # Not dropped: the affiliate owes 10.00, netted against what it earns next.
    assert b["affiliate_available"] == D("-10.00")
    with db.read() as conn:
        last = conn.execute(
            select(tables.ledger_transactions.c.kind).order_by(
                tables.ledger_transactions.c.id.desc()
            )
        ).scalar()
    assert last == "clawback"
    send(db, w, order_id="C-2", amount="300.00", click_id=a_click(db, w), status="approved")
    assert books(db, w)["affiliate_available"] == D("20.00")
    assert_books_hold(db)


def test_repeats_post_nothing_and_illegal_moves_change_no_balance(db):
    w = make_world(db)
    send(db, w, order_id="I-1", amount="80.00", click_id=a_click(db, w), status="approved")
    before = (books(db, w), count(db, tables.ledger_entries))
    send(db, w, order_id="I-1", status="approved")  # a repeat
    send(db, w, order_id="I-1", amount="80.00", status="approved")  # a duplicate sale
    for illegal in ({"status": "rejected"}, {"status": "pending"}):
        with pytest.raises(Conflict):
            send(db, w, order_id="I-1", **illegal)
    with pytest.raises(DomainError):
        send(db, w, order_id="I-1", status="refunded", refund_amount="81.00")
    assert (books(db, w), count(db, tables.ledger_entries)) == before
    assert_books_hold(db)


def test_the_check_finds_tampered_entries_and_the_cli_fails(db):
    w = make_world(db)
    send(db, w, order_id="T-1", amount="80.00", click_id=a_click(db, w))
    env = {**os.environ, "TUIKE_DATABASE_URL": db.url}
    ok = subprocess.run(
        [str(BIN / "tuike"), "ledger", "check"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "every currency sums to zero" in ok.stdout and "FAIL" not in ok.stdout
    with db.write() as conn:
        first = conn.execute(select(tables.ledger_entries.c.id)).scalars().first()
        conn.execute(
            update(tables.ledger_entries)
            .where(tables.ledger_entries.c.id == first)
            .values(amount_minor=tables.ledger_entries.c.amount_minor + 1)
        )
    with db.read() as conn:
        report = ledger.check(conn)
    assert report.unbalanced_currencies == ["CNY"]
    assert len(report.unbalanced_transactions) == 1
    assert len(report.drifted_accounts) == 1
    assert len(report.unreconciled_conversions) == 1
    bad = subprocess.run(
        [str(BIN / "tuike"), "ledger", "check"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "FAIL" in bad.stdout, bad.stdout


def test_racing_approvals_and_refunds_leave_the_books_consistent(db):
    w = with_fee(db, "0.10", "on_top")
    orders = [f"RACE-{i}" for i in range(8)]
    for order in orders:
        send(db, w, order_id=order, amount="199.00", click_id=a_click(db, w))
    moves = [{"status": "approved"}, {"status": "refunded", "refund_amount": "99.00"}]
    moves += [{"status": "refunded"}, {"status": "rejected"}]
    barrier = threading.Barrier(32, timeout=30)
    outcomes: list[str] = []

    def worker(i: int) -> None:
        rng = random.Random(i)
        barrier.wait()
        for _ in range(4):
            try:
                send(db, w, order_id=rng.choice(orders), **rng.choice(moves))
                outcomes.append("ok")
            except (Conflict, DomainError):
                outcomes.append("refused")

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(worker, range(32)))
    report = assert_books_hold(db)
    print(
        f"\n32 threads x 4 moves on 8 conversions: {outcomes.count('ok')} applied or "
        f"repeated, {outcomes.count('refused')} refused; {report.transactions} ledger "
        f"transactions, books balanced and reconciled"
    )


def test_only_the_operator_sets_a_programs_service_fee(db, client):
    w = make_world(db)
    url = f"/api/v1/programs/{w.program.id}"
    r = client.patch(url, json={"fee_rate": "0"}, headers=bearer(w.merchant_key))
    assert r.status_code == 403
    for bad in ({"fee_rate": "1.5"}, {"fee_rate": 0.1}, {"fee_mode": "sometimes"}):
        r = client.patch(url, json=bad, headers=bearer(w.operator_key))
        assert r.status_code in (400, 422), (bad, r.text)
    assert client.get(url, headers=bearer(w.operator_key)).json()["fee_rate"] == "0"
    r = client.patch(
        url, json={"fee_rate": "0.10", "fee_mode": "deducted"}, headers=bearer(w.operator_key)
    )
    assert r.status_code == 200 and (r.json()["fee_rate"], r.json()["fee_mode"]) == (
        "0.1",
        "deducted",
    )


def test_balances_and_lines_over_the_api_are_the_owners_only(db, client):
    w = with_fee(db, "0.10", "on_top")
    send(db, w, order_id="API-1", amount="199.00", click_id=a_click(db, w), status="approved")
    ops = bearer(w.operator_key)
    r = client.post(
        f"/api/v1/merchants/{w.merchant_id}/top-ups",
        json={"amount": "500.00", "reference": "BANK-1"},
        headers=ops,
    )
    assert r.status_code == 201 and r.json() == {
        "posted": True,
        "reference": "BANK-1",
        "funds": "478.11",  # 500.00 - 19.90 - 1.99
    }
    again = client.post(
        f"/api/v1/merchants/{w.merchant_id}/top-ups",
        json={"amount": "500.00", "reference": "BANK-1"},
        headers=ops,
    )
    assert again.json()["posted"] is False and again.json()["funds"] == "478.11"
    for bad in ({"amount": "-1.00", "reference": "X"}, {"amount": "0", "reference": "Y"}):
        r = client.post(f"/api/v1/merchants/{w.merchant_id}/top-ups", json=bad, headers=ops)
        assert r.status_code in (400, 422)
    r = client.post(
        f"/api/v1/merchants/{w.merchant_id}/top-ups",
        json={"amount": "1.00", "reference": "Z"},
        headers=bearer(w.merchant_key),
    )
    assert r.status_code == 403

    mine = client.get("/api/v1/balances", headers=bearer(w.affiliate_key)).json()
    assert mine["balances"]["CNY"]["available"] == "19.90"
    lines = client.get("/api/v1/ledger/lines", headers=bearer(w.affiliate_key)).json()
    assert [(x["kind"], x["account"], x["amount"]) for x in lines] == [
        ("approve", "available", "19.90")
    ]
    # Another affiliate's or a merchant's books are not there for this caller.
    for params in (
        {"owner_type": "affiliate", "owner_id": w.other_affiliate_id},
        {"owner_type": "merchant", "owner_id": w.merchant_id},
    ):
        r = client.get("/api/v1/balances", params=params, headers=bearer(w.affiliate_key))
        assert r.status_code == 404
    other = client.get("/api/v1/balances", headers=bearer(w.other_affiliate_key)).json()
    assert other["balances"] == {}
    merchant = client.get("/api/v1/balances", headers=bearer(w.merchant_key)).json()
    assert merchant["balances"]["CNY"]["funds"] == "478.11"
    platform = client.get("/api/v1/balances", params={"owner_type": "platform"}, headers=ops).json()
    assert platform["balances"]["CNY"]["fee_revenue"] == "1.99"
    assert client.get("/api/v1/balances").status_code == 401
    assert_books_hold(db)


def test_a_sale_in_another_currency_is_converted_at_the_stored_rate(db, client):
    w = make_world(db)
    ops = bearer(w.operator_key)
    order = {"order_id": "FX-1", "amount": "100.00", "currency": "USD"}
    # No rate yet: a clear refusal, nothing recorded.
    r = client.post(
        "/api/v1/conversions",
        json={**order, "click_id": a_click(db, w)},
        headers=bearer(w.program_key),
    )
    assert r.status_code == 400 and "exchange rate" in r.text
    assert count(db, tables.conversions) == 0
    for bad in ({"rate": "-1"}, {"rate": "abc"}, {"rate": 7.1}):
        r = client.post(
            "/api/v1/fx-rates", json={"base": "USD", "quote": "CNY", **bad}, headers=ops
        )
        assert r.status_code in (400, 422), bad
    r = client.post(
        "/api/v1/fx-rates",
        json={"base": "USD", "quote": "CNY", "rate": "7.12345"},
        headers=bearer(w.merchant_key),
    )
    assert r.status_code == 403
    r = client.post(
        "/api/v1/fx-rates", json={"base": "USD", "quote": "CNY", "rate": "7.12345"}, headers=ops
    )
    assert r.status_code == 201
    r = client.post(
        "/api/v1/conversions",
        json={**order, "click_id": a_click(db, w)},
        headers=bearer(w.program_key),
    )
    body = r.json()
    assert "service_fee" not in body  # no fee on this program
    # 100.00 USD x 7.12345 = 712.345 -> 712.35 CNY (half up); 10 % commission 71.24 (half up).
    assert (body["currency"], body["amount"], body["commission"]) == ("CNY", "712.35", "71.24")
    assert body["reported"] == {"currency": "USD", "amount": "100.00", "fx_rate": "7.12345"}
    # A new rate does not change a recorded conversion: refunds use the stored one.
    client.post("/api/v1/fx-rates", json={"base": "USD", "quote": "CNY", "rate": "8"}, headers=ops)
    r = client.post(
        "/api/v1/conversions",
        json={"order_id": "FX-1", "status": "refunded", "refund_amount": "100.00",
              "currency": "USD"},
        headers=bearer(w.program_key),
    )  # fmt: skip
    assert (r.json()["status"], r.json()["refunded_amount"]) == ("refunded", "712.35")
    assert_books_hold(db)


ILLEGAL = [
    ("rejected", {"status": "approved"}),
    ("rejected", {"status": "pending"}),
    ("rejected", {"status": "refunded"}),
    ("refunded", {"status": "approved"}),
    ("refunded", {"status": "pending"}),
    ("refunded", {"status": "rejected"}),
    ("approved", {"status": "pending"}),
    ("approved", {"status": "rejected"}),
    ("approved", {"status": "refunded", "refund_amount": "100.01"}),
    ("pending", {"status": "approved", "refund_amount": "1.00"}),
    ("partly refunded", {"status": "refunded", "refund_amount": "10.00"}),  # less than before
]


@pytest.mark.parametrize(("start", "move"), ILLEGAL, ids=[f"{s}->{m}" for s, m in ILLEGAL])
def test_every_illegal_move_is_refused_and_changes_no_balance(db, start, move):
    w = make_world(db, fee_rate="0.10", fee_mode="on_top")
    send(db, w, order_id="X", amount="100.00", click_id=a_click(db, w))
    if start == "partly refunded":
        send(db, w, order_id="X", status="approved")
        send(db, w, order_id="X", status="refunded", refund_amount="50.00")
    elif start != "pending":
        send(db, w, order_id="X", status=start)
    before = (books(db, w), count(db, tables.ledger_entries), count(db, tables.conversion_events))
    with pytest.raises(DomainError):
        send(db, w, order_id="X", **move)
    after = (books(db, w), count(db, tables.ledger_entries), count(db, tables.conversion_events))
    assert after == before
    assert_books_hold(db)


def test_reconciliation_in_chunks_finds_a_drift_in_a_later_chunk(db):
    w = make_world(db)
    for i in range(5):
        send(db, w, order_id=f"CH-{i}", amount="10.00", click_id=a_click(db, w))
    with db.read() as conn:
        assert ledger._reconcile(conn, 20, chunk=2) == []
        fourth = conn.execute(
            select(tables.conversions.c.id).order_by(tables.conversions.c.id).offset(3)
        ).scalar()
        tx = conn.execute(
            select(tables.ledger_transactions.c.id).where(
                tables.ledger_transactions.c.conversion_id == fourth
            )
        ).scalar()
    with db.write() as conn:
        conn.execute(
            update(tables.ledger_entries)
            .where(tables.ledger_entries.c.transaction_id == tx)
            .values(amount_minor=tables.ledger_entries.c.amount_minor * 2)
        )
    with db.read() as conn:
        problems = ledger._reconcile(conn, 20, chunk=2)
    assert len(problems) == 1 and fourth in problems[0]
