"""Payout batches: minimum and carry-over, rail files, result import, failures."""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal

import pytest
from sqlalchemy import update

from factories.money import a_click, assert_books_hold, send
from factories.server import BIN
from factories.world import make_world
from tuike.domain import ledger as L
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.services import catalog as svc
from tuike.services import ledger, payouts
from tuike.storage import tables

D = Decimal


def available(db, affiliate_id: int) -> D:
    with db.read() as conn:
        return (
            D(ledger.balance(conn, L.Account(L.AFFILIATE, affiliate_id, L.AVAILABLE, "CNY"))) / 100
        )


def test_a_batch_pays_balances_over_the_minimum_and_imports_the_results(db):
    w = make_world(db)
    with db.write() as conn:
        second = svc.create_link(conn, program=w.program, affiliate_id=w.other_affiliate_id)
        conn.execute(
            update(tables.affiliates)
            .where(tables.affiliates.c.id == w.affiliate_id)
            .values(payout_method="alipay", payout_account="=HYPERLINK(1)", payout_name="张三")
        )
    send(db, w, order_id="P-1", amount="199.00", click_id=a_click(db, w), status="approved")
    send(db, w, order_id="P-2", amount="50.00", click_id=a_click(db, w, second), status="approved")
    assert (available(db, w.affiliate_id), available(db, w.other_affiliate_id)) == (
        D("19.90"),
        D("5.00"),
    )
    with db.write() as conn:
        batch = payouts.create_batch(conn, currency="CNY", minimum_minor=1000)
    assert (batch.items, batch.total_minor) == (1, 1990)
    # Paid out of the balance at once; the 5.00 under the minimum carries over.
    assert (available(db, w.affiliate_id), available(db, w.other_affiliate_id)) == (
        D("0.00"),
        D("5.00"),
    )
    with db.read() as conn:
        (item,) = payouts.batch_items(conn, batch.id)
        bank = payouts.export(conn, batch.id, "bank")
        alipay = payouts.export(conn, batch.id, "alipay")
        paypal = payouts.export(conn, batch.id, "paypal")
        with pytest.raises(InvalidField):
            payouts.export(conn, batch.id, "swift")
    assert f"{item.id},张三,'=HYPERLINK(1),19.90,CNY" in bank  # no formula in a spreadsheet
    assert alipay.splitlines()[1].split(",")[2:] == ["1", "19.90"]
    assert f"{item.id},'=HYPERLINK(1),张三,19.90,推客佣金" in alipay
    assert paypal.startswith("'=HYPERLINK(1),19.90,CNY," + item.id)

    with db.write() as conn:
        report = payouts.import_results(
            conn, payouts.parse_results(f"item_id,status\n{item.id},paid\n")
        )
    assert (report.paid, report.failed) == (1, 0)
    with db.read() as conn:
        paid = ledger.balances(conn, L.AFFILIATE, w.affiliate_id)["CNY"]
        platform = ledger.balances(conn, L.PLATFORM, L.PLATFORM_ID)["CNY"]
    assert paid["paid_out"] == D("19.90") and paid["available"] == D("0.00")
    assert platform["payout_clearing"] == D("0.00") and platform["cash"] == D("-19.90")
    entries = tables.ledger_entries
    with db.read() as conn:
        before = conn.execute(entries.select()).all()
    with db.write() as conn:  # a repeat is recorded as such and posts nothing
        again = payouts.import_results(conn, [(item.id, "paid", "")])
    assert again.unchanged == 1
    with pytest.raises(Conflict), db.write() as conn:  # paid cannot become failed
        payouts.import_results(conn, [(item.id, "failed", "")])
    with pytest.raises(NotFound), db.write() as conn:
        payouts.import_results(conn, [("01JUNKNOWN0000000000000000", "paid", "")])
    with db.read() as conn:
        assert conn.execute(entries.select()).all() == before
    assert_books_hold(db)


def test_a_failed_payout_returns_the_money_to_the_affiliate(db):
    w = make_world(db)
    send(db, w, order_id="F-1", amount="500.00", click_id=a_click(db, w), status="approved")
    with db.write() as conn:
        batch = payouts.create_batch(conn, currency="CNY", minimum_minor=100)
        (item,) = payouts.batch_items(conn, batch.id)
    assert available(db, w.affiliate_id) == D("0.00")
    with db.write() as conn:
        payouts.import_results(conn, [(item.id, "failed", "account closed")])
    assert available(db, w.affiliate_id) == D("50.00")
    with db.write() as conn:  # the next batch pays it again
        assert payouts.create_batch(conn, currency="CNY", minimum_minor=100).total_minor == 5000
    assert_books_hold(db)


def test_bad_result_files_are_refused_with_the_line(db):
    for text, message in (
        ("x\n", "line 1: expected item_id,status"),
        ("a,done\n", "line 1: status must be paid or failed"),
    ):
        with pytest.raises(InvalidField, match=message):
            payouts.parse_results(text)


def test_the_payout_commands(db, tmp_path):
    w = make_world(db)
    send(db, w, order_id="CLI-1", amount="2000.00", click_id=a_click(db, w), status="approved")
    env = {**os.environ, "TUIKE_DATABASE_URL": db.url}

    def tuike(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "tuike"), *args], env=env, capture_output=True, text=True, timeout=60
        )

    created = tuike("payouts", "create", "--currency", "CNY")
    assert created.returncode == 0, created.stderr
    batch_id = created.stdout.strip().splitlines()[-1]
    assert "1 payouts, 200.00 CNY" in created.stdout
    out = tmp_path / "batch.csv"
    exported = tuike("payouts", "export", batch_id, "--format", "alipay", "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    item_id = out.read_text(encoding="utf-8").splitlines()[3].split(",")[0]
    results = tmp_path / "results.csv"
    results.write_text(f"item_id,status,note\n{item_id},paid,ok\n")
    imported = tuike("payouts", "import", str(results))
    assert imported.returncode == 0 and "1 paid" in imported.stdout, imported.stderr
    results.write_text("nonsense\n")
    bad = tuike("payouts", "import", str(results))
    assert bad.returncode == 1 and "line 1" in bad.stderr
    unknown = tuike("payouts", "export", "01JUNKNOWN0000000000000000")
    assert unknown.returncode == 1 and "error: payout batch not found" in unknown.stderr
    assert tuike("ledger", "check").returncode == 0
