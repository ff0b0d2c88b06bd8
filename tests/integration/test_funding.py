"""Prepaid merchants: programs pause when funds plus credit run out, resume on top-up."""

from __future__ import annotations

from factories.http import bearer
from factories.money import a_click, assert_books_hold, send
from factories.world import make_world


def status(client, w) -> str:
    r = client.get(f"/api/v1/programs/{w.program.id}", headers=bearer(w.operator_key))
    return r.json()["status"]


def test_a_prepaid_merchant_pauses_when_funds_run_out_and_resumes_on_top_up(db, client):
    w = make_world(db)
    ops = bearer(w.operator_key)
    base = f"/api/v1/merchants/{w.merchant_id}"
    r = client.patch(f"{base}/funding", json={"prepaid": True}, headers=ops)
    # Nothing was topped up: prepaid with no funds pauses at once.
    assert r.status_code == 200 and r.json() == {
        "prepaid": True,
        "currency": "CNY",
        "spendable": "0.00",
    }
    assert status(client, w) == "active"  # zero is not below zero
    client.post(f"{base}/top-ups", json={"amount": "30.00", "reference": "T1"}, headers=ops)
    send(db, w, order_id="F-1", amount="199.00", click_id=a_click(db, w), status="approved")
    assert status(client, w) == "active"  # 30.00 - 19.90 = 10.10 left
    send(db, w, order_id="F-2", amount="199.00", click_id=a_click(db, w))  # reserves 19.90
    assert status(client, w) == "paused"
    # Conversions are still recorded and posted while paused.
    send(db, w, order_id="F-3", amount="100.00", click_id=a_click(db, w))
    notes = client.get("/api/v1/notifications", headers=bearer(w.merchant_key)).json()
    assert [n["kind"] for n in notes] == ["programs_paused_unfunded"]
    assert "(-9.80 CNY)" in notes[0]["message"]  # 10.10 - 19.90
    assert client.get("/api/v1/notifications", headers=ops).json()[0]["kind"] == (
        "programs_paused_unfunded"
    )
    # Funds are now -19.80: a credit limit of 10.00 is not enough; a top-up of 50.00 is.
    r = client.patch(f"{base}/funding", json={"credit_limit": "10.00"}, headers=ops)
    assert r.json()["spendable"] == "-9.80" and status(client, w) == "paused"
    r = client.post(f"{base}/top-ups", json={"amount": "50.00", "reference": "T2"}, headers=ops)
    assert r.json()["funds"] == "30.20"
    assert status(client, w) == "active"
    notes = client.get("/api/v1/notifications", headers=bearer(w.merchant_key)).json()
    assert [n["kind"] for n in notes] == ["programs_resumed", "programs_paused_unfunded"]
    # Only the operator sets funding terms; another merchant cannot read these messages.
    r = client.patch(f"{base}/funding", json={"prepaid": False}, headers=bearer(w.merchant_key))
    assert r.status_code == 403
    assert client.get("/api/v1/notifications", headers=bearer(w.affiliate_key)).status_code == 403
    assert_books_hold(db)


def test_a_postpaid_merchant_is_never_paused_and_a_manual_pause_is_kept(db, client):
    w = make_world(db)
    send(db, w, order_id="P-1", amount="999.00", click_id=a_click(db, w), status="approved")
    assert status(client, w) == "active"  # postpaid (the default): invoiced, not paused
    ops = bearer(w.operator_key)
    base = f"/api/v1/merchants/{w.merchant_id}"
    client.patch(f"{base}/funding", json={"prepaid": True}, headers=ops)
    assert status(client, w) == "paused"
    r = client.patch(f"/api/v1/programs/{w.program.id}", json={"status": "paused"}, headers=ops)
    assert r.status_code == 200
    client.post(f"{base}/top-ups", json={"amount": "500.00", "reference": "T"}, headers=ops)
    # Paused by a person, not for want of funds: the top-up does not resume it.
    assert status(client, w) == "paused"
