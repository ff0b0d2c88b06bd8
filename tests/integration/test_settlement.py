"""Closing a period: affiliate statements and merchant invoices, once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from factories.http import bearer
from factories.money import a_click, assert_books_hold, send
from factories.world import make_world
from tuike.domain.errors import InvalidField
from tuike.services import catalog as svc
from tuike.services import ledger, payouts, settlement
from tuike.storage import catalog as repo

TZ = "Asia/Shanghai"


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T04:00:00+00:00")


def test_closing_a_month_writes_statements_and_invoices_once(db, client):
    w = make_world(db, fee_rate="0.10", fee_mode="deducted")
    other = make_world(db, tag="b", fee_rate="0.10", fee_mode="on_top")
    # Before the period: 10.00 earned (fee 1.00 withheld: 9.00 available).
    send(
        db,
        w,
        at=at("2026-09-20"),
        order_id="S-0",
        amount="100.00",
        click_id=a_click(db, w, at=at("2026-09-20")),
        status="approved",
    )
    # In October: 199.00 sale approved (19.90, fee 1.99 -> 17.91), then half refunded.
    send(
        db,
        w,
        at=at("2026-10-05"),
        order_id="S-1",
        amount="199.00",
        click_id=a_click(db, w, at=at("2026-10-05")),
    )
    send(db, w, at=at("2026-10-10"), order_id="S-1", status="approved")
    send(db, w, at=at("2026-10-12"), order_id="S-1", status="refunded", refund_amount="99.00")
    with db.write() as conn:
        batch = payouts.create_batch(conn, currency="CNY", minimum_minor=500, now=at("2026-10-20"))
    # After the period: not in October's statement.
    send(
        db,
        w,
        at=at("2026-11-02"),
        order_id="S-2",
        amount="50.00",
        click_id=a_click(db, w, at=at("2026-11-02")),
        status="approved",
    )
    send(
        db,
        other,
        at=at("2026-10-06"),
        order_id="O-1",
        amount="300.00",
        click_id=a_click(db, other, at=at("2026-10-06")),
        status="approved",
    )

    period = settlement.parse_period("2026-10", TZ)
    assert period.starts_at.isoformat() == "2026-10-01T00:00:00+08:00"
    with db.write() as conn:
        result = settlement.close_period(conn, period)
    assert (result.closed_now, result.statements, result.invoices) == (True, 2, 2)
    with db.read() as conn:
        (stmt,) = settlement.statements_of(conn, "affiliate", w.affiliate_id)
        (invoice,) = settlement.statements_of(conn, "merchant", w.merchant_id)
        (other_invoice,) = settlement.statements_of(conn, "merchant", other.merchant_id)
    # Refund of 99.00: commission 19.90 -> 10.00, fee 1.99 -> 1.00.
    lines = {k: getattr(stmt, f"{k}_minor") for k in ("opening", *settlement.LINES, "closing")}
    assert lines == {
        "opening": 900,
        "commissions": 1990,
        "fees": -100,  # -1.99 withheld, +0.99 given back with the refund
        "reversals": -990,
        "clawbacks": 0,
        "overrides": 0,
        "payouts": -(900 + 1000 - 100),  # the batch paid everything available then
        "other": 0,
        "closing": 0,
    }
    assert batch.total_minor == 1800
    # The deducted program's merchant pays the commission only, net of the refund.
    assert (invoice.commissions_minor, invoice.fees_minor, invoice.reversals_minor) == (
        1990,
        0,
        -990,
    )
    assert invoice.closing_minor == 1000
    # The on-top program's merchant pays 30.00 + 3.00 fee.
    assert (other_invoice.commissions_minor, other_invoice.fees_minor) == (3000, 300)
    assert other_invoice.closing_minor == 3300

    with db.write() as conn:  # again: nothing new
        again = settlement.close_period(conn, period)
    assert (again.closed_now, again.statements, again.invoices) == (False, 2, 2)
    listed = client.get("/api/v1/statements", headers=bearer(w.affiliate_key)).json()
    assert [(s["period"], s["opening"], s["closing"]) for s in listed] == [
        ("2026-10", "9.00", "0.00")
    ]
    assert client.get("/api/v1/statements", headers=bearer(w.other_affiliate_key)).json() == []
    assert_books_hold(db)


def test_periods_are_parsed_and_an_open_period_is_not_closed(db):
    week = settlement.parse_period("2026-W47", TZ)
    assert (week.starts_at.isoformat(), week.ends_at.isoformat()) == (
        "2026-11-16T00:00:00+08:00",
        "2026-11-23T00:00:00+08:00",
    )
    cut = settlement.parse_period("2026-12", TZ, cutoff_day=26)
    assert cut.ends_at.isoformat() == "2027-01-26T00:00:00+08:00"
    for bad in ("2026-13", "2026/11", "2026-W60", "november"):
        with pytest.raises(InvalidField):
            settlement.parse_period(bad, TZ)
    future = settlement.parse_period("2026-11", TZ)
    with pytest.raises(InvalidField, match="has not ended"), db.write() as conn:
        settlement.close_period(conn, future, now=datetime(2026, 11, 20, tzinfo=UTC))


def test_a_recruiter_earns_an_override_that_follows_the_recruits_commission(db, client):
    w = make_world(db)
    ops = bearer(w.operator_key)
    r = client.post(
        "/api/v1/affiliates",
        json={"name": "Recruit", "email": "recruit@example.com", "recruited_by": w.affiliate_id},
        headers=ops,
    )
    recruit = r.json()["id"]
    assert r.status_code == 201
    r = client.patch(
        f"/api/v1/programs/{w.program.id}", json={"override_rate": "0.05"}, headers=ops
    )
    assert r.json()["override_rate"] == "0.05"
    bad = client.patch(
        f"/api/v1/programs/{w.program.id}",
        json={"override_rate": "0.05"},
        headers=bearer(w.merchant_key),
    )
    assert bad.status_code == 403
    with db.write() as conn:
        program = repo.get_program(conn, w.program.id)
        m = svc.apply_to_program(conn, program=program, affiliate_id=recruit)
        svc.decide_membership(conn, m, status="approved")
        link = svc.create_link(conn, program=program, affiliate_id=recruit)
    w = dataclasses.replace(w, program=program)
    sale_at = at("2026-10-08")
    send(db, w, at=sale_at, order_id="R-1", amount="200.00",
         click_id=a_click(db, w, link, at=sale_at), status="approved")  # fmt: skip
    send(db, w, at=at("2026-10-09"), order_id="R-1", status="refunded", refund_amount="50.00")
    with db.read() as conn:
        recruiter = ledger.balances(conn, "affiliate", w.affiliate_id)["CNY"]
        recruit_books = ledger.balances(conn, "affiliate", recruit)["CNY"]
        platform = ledger.balances(conn, "platform", 0)["CNY"]
    # 10 % of 200.00 = 20.00, refunded to 15.00; the override 5 % of it: 0.75.
    assert recruit_books["available"] == D("15.00")
    assert recruiter["available"] == D("0.75")
    assert platform["override_expense"] == D("0.75")
    with db.write() as conn:
        settlement.close_period(conn, settlement.parse_period("2026-10", TZ))
        (stmt,) = settlement.statements_of(conn, "affiliate", w.affiliate_id)
    assert (stmt.overrides_minor, stmt.commissions_minor, stmt.closing_minor) == (75, 0, 75)
    assert_books_hold(db)
