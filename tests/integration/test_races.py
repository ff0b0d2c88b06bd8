"""Concurrent duplicates: one conversion and one commission however many arrive at once.

Every thread waits at a barrier and then fires, so the requests really overlap; on
PostgreSQL they run in parallel transactions, on SQLite they queue on the write lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from factories.http import bearer, click, count
from factories.world import World, make_world
from tuike.services import ledger
from tuike.services.clock import utcnow
from tuike.services.conversion_requests import parse_request
from tuike.services.conversions import record_conversion
from tuike.storage import tables

N = 32


def rolled_up(db: Any) -> tuple[int, int]:
    """Return (conversions, commission in minor units) summed over the rollups."""
    r = tables.conversion_rollups.c
    with db.read() as conn:
        row = conn.execute(
            select(
                func.coalesce(func.sum(r.conversions), 0),
                func.coalesce(func.sum(r.commission_minor), 0),
            )
        ).one()
    return int(row[0]), int(row[1])


def run_together(n: int, fn: Any) -> list[Any]:
    """Call fn(i) from n threads released at the same moment; return the results."""
    barrier = threading.Barrier(n, timeout=30)

    def task(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(task, range(n)))


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


def test_concurrent_duplicates_through_the_service(db, world):
    program = world.program
    body = {"order_id": "RACE-1", "amount": "199.00", "currency": "CNY"}

    def record(_: int) -> Any:
        now = utcnow()
        with db.write() as conn:
            req = parse_request(body, program, now=now, max_future=timedelta(hours=1))
            return record_conversion(conn, program, req, source="api", privacy_salt="s", now=now)

    results = run_together(N, record)
    assert Counter(r.http_status for r in results) == {201: 1, 200: N - 1}
    (created,) = [r.body for r in results if r.http_status == 201]
    for r in results:
        if r.http_status == 200:
            assert r.body == {**created, "duplicate": True}
    assert count(db, tables.conversions) == 1
    assert count(db, tables.conversion_events) == 1
    assert rolled_up(db) == (1, 0)
    assert_books_hold(db)


def test_concurrent_duplicates_over_http(db, client, world):
    click_id = click(client, world.link.code)
    body = {"order_id": "RACE-2", "amount": "199.00", "click_id": click_id}

    def post(_: int) -> Any:
        return client.post("/api/v1/conversions", json=body, headers=bearer(world.program_key))

    answers = run_together(N, post)
    assert Counter(r.status_code for r in answers) == {201: 1, 200: N - 1}, [
        r.text for r in answers
    ]
    (created,) = [r.json() for r in answers if r.status_code == 201]
    assert created["commission"] == "19.90"
    assert all(r.json() == {**created, "duplicate": True} for r in answers if r.status_code == 200)
    assert count(db, tables.conversions) == 1
    assert count(db, tables.conversion_events) == 1
    assert rolled_up(db) == (1, 1990)
    # One posting (the reservation) for the one conversion, however many duplicates raced.
    assert count(db, tables.ledger_transactions) == 1
    print(f"\n{N} racing duplicates: 1 conversion, 1 ledger transaction")
    assert_books_hold(db)


def test_concurrent_partial_refunds_apply_once(db, client, world):
    click_id = click(client, world.link.code)
    auth = bearer(world.program_key)
    sale = {"order_id": "RACE-3", "amount": "199.00", "click_id": click_id}
    assert client.post("/api/v1/conversions", json=sale, headers=auth).status_code == 201
    refund = {"order_id": "RACE-3", "status": "refunded", "refund_amount": "99.00"}

    def post(_: int) -> Any:
        return client.post("/api/v1/conversions", json=refund, headers=auth)

    answers = run_together(N, post)
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    changed = [r.json() for r in answers if not r.json().get("duplicate")]
    assert len(changed) == 1
    assert (changed[0]["commission"], changed[0]["refunded_amount"]) == ("10.00", "99.00")
    assert count(db, tables.conversion_events) == 2
    assert rolled_up(db) == (1, 1000)
    assert count(db, tables.ledger_transactions) == 2  # the reservation, one partial refund
    assert_books_hold(db)


def test_concurrent_requests_with_one_idempotency_key(db, client, world):
    headers = {**bearer(world.program_key), "Idempotency-Key": "same-key"}
    body = {"order_id": "RACE-4", "amount": "50.00"}

    def post(_: int) -> Any:
        return client.post("/api/v1/conversions", json=body, headers=headers)

    answers = run_together(8, post)
    # The key is reserved before the request runs: one request runs, the repeats get the
    # stored answer or, while it is still running, 409 "in progress" (never a second run).
    codes = [r.status_code for r in answers]
    assert set(codes) <= {201, 409}, [r.text for r in answers]
    ran = [
        r.json() for r in answers if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(ran) == 1
    replayed = [r.json() for r in answers if "idempotent-replayed" in r.headers]
    assert all(body == ran[0] for body in replayed)
    assert all(
        r.json()["error"]["field"] == "Idempotency-Key" for r in answers if r.status_code == 409
    )
    assert count(db, tables.conversions) == 1
    assert count(db, tables.conversion_events) == 1
    assert count(db, tables.idempotency_keys) == 1
    replay = client.post("/api/v1/conversions", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == ran[0]


def assert_books_hold(db) -> None:
    with db.read() as conn:
        report = ledger.check(conn)
    assert report.ok, report
