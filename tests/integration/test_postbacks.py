"""Affiliate postbacks (spec section 5): templates, queueing with conversions, delivery, SSRF.

The portal screen and the API are in test_postback_screens.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event, select

from factories.http import click, convert, post, snapshot
from factories.postbacks import allow_loopback, app_client, deliveries, query, sale_for, set_url
from factories.receiver import Receiver, receiver
from factories.world import World, make_world
from tuike.domain import postbacks as P
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.services import catalog as cat
from tuike.services import conversion_queries, conversions
from tuike.services import postbacks as svc
from tuike.services.clock import utcnow
from tuike.storage import postbacks as store
from tuike.storage import tables as t
from tuike.workers.postbacks import LEASE, deliver_due

ALL = "https://pb.example/{event}?" + "&".join(f"{m}={{{m}}}" for m in P.MACROS)


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


@pytest.fixture
def allowed(settings: Any) -> Any:
    """Settings that let postbacks reach the receiver on loopback."""
    return allow_loopback(settings)


@pytest.fixture
def server() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


# --- templates -----------------------------------------------------------------------


def test_template_errors_change_nothing(db, world):
    with db.write() as conn:
        stranger = cat.create_program(
            conn,
            merchant_id=world.merchant_id,
            currency="CNY",
            name="Not joined",
            landing_url="https://x.example/",
            commission_plan={"cps_percent": "5"},
        )
    before = snapshot(db)
    bad = {
        "https://pb.example/?c={clickid}": "unknown macro {clickid}",
        "ftp://pb.example/": "http",
        "pb.example/?c={click_id}": "absolute",
        "https://{sub1}.pb.example/": "path and the query",
        "https://pb.example/?c={click_id": "'{'",
        "": "required",
    }
    for template, says in bad.items():
        with pytest.raises(InvalidField) as err, db.write() as conn:
            svc.set_postback_url(conn, world.affiliate_id, 0, template)
        assert err.value.field == "url_template" and says in err.value.message
    with pytest.raises(Conflict, match="not approved"), db.write() as conn:
        svc.set_postback_url(conn, world.affiliate_id, stranger.id, "https://pb.example/")
    with pytest.raises(NotFound), db.write() as conn:
        svc.set_postback_url(conn, world.affiliate_id, 10**9, "https://pb.example/")
    with pytest.raises(NotFound), db.write() as conn:
        svc.delete_postback_url(conn, world.affiliate_id, 0)
    assert snapshot(db) == before


def test_saving_again_replaces_and_program_zero_is_the_default(db, world):
    set_url(db, world.affiliate_id, "https://pb.example/a")
    set_url(db, world.affiliate_id, "  https://pb.example/b  ")
    set_url(db, world.affiliate_id, "https://pb.example/p?o={order_id}", world.program.id)
    with db.read() as conn:
        urls = svc.postback_urls(conn, world.affiliate_id)
        assert store.template_for(conn, world.affiliate_id, world.program.id).endswith("{order_id}")
        assert store.template_for(conn, world.affiliate_id, world.other_program.id).endswith("/b")
        assert store.template_for(conn, world.other_affiliate_id, world.program.id) is None
    assert [(u.program_id, u.url_template) for u in urls] == [
        (0, "https://pb.example/b"),
        (world.program.id, "https://pb.example/p?o={order_id}"),
    ]


# --- queueing with the conversion ----------------------------------------------------


def test_each_conversion_event_queues_one_delivery(db, client, world):
    set_url(db, world.affiliate_id, ALL)
    conv = sale_for(client, world, "A 1/2", aff_click_id="my click&1", sub2="群 7")
    cid = conv["conversion_id"]
    assert len(deliveries(db, world.affiliate_id)) == 1
    assert post(client, world, {"order_id": "A 1/2", "status": "approved"}).status_code == 200
    again = post(client, world, {"order_id": "A 1/2", "status": "approved"})
    assert again.json()["duplicate"] is True
    assert len(deliveries(db, world.affiliate_id)) == 2
    assert post(client, world, {"order_id": "A 1/2", "status": "refunded"}).status_code == 200
    queued = deliveries(db, world.affiliate_id)
    assert [d.status for d in queued] == ["pending"] * 3
    assert {d.conversion_id for d in queued} == {cid}
    values = [query(d.url) for d in queued]
    assert [(v["status"], v["payout"]) for v in values] == [
        ("pending", "19.90"),
        ("approved", "19.90"),
        ("refunded", "0.00"),
    ]
    with db.read() as conn:
        click_id = conn.execute(
            select(t.conversions.c.click_id).where(t.conversions.c.id == cid)
        ).scalar_one()
    assert values[0] == {
        "click_id": click_id,
        "aff_click_id": "my click&1",
        "sub1": "wechat",
        "sub2": "群 7",
        "sub3": "",
        "sub4": "",
        "sub5": "",
        "event": "sale",
        "order_id": "A 1/2",
        "payout": "19.90",
        "currency": "CNY",
        "status": "pending",
    }
    assert urlsplit(queued[0].url).path == "/sale"
    # Queueing the same conversion event again (a retried relay, say) adds nothing.
    with db.write() as conn:
        row = conversion_queries.get_conversion(conn, cid)
        first_event = conn.execute(
            select(t.conversion_events.c.id)
            .where(t.conversion_events.c.conversion_id == cid)
            .order_by(t.conversion_events.c.id)
        ).first()[0]
        added = svc.enqueue_for_event(
            conn, row, first_event, status="pending", commission_minor=1990, now=utcnow()
        )
    assert added is False
    assert len(deliveries(db, world.affiliate_id)) == 3


def test_lock_period_and_merchant_review_queue_postbacks_too(db, client, world):
    set_url(db, world.affiliate_id, "https://pb.example/?s={status}&p={payout}")
    sale_for(client, world, "L-1")
    reviewed = sale_for(client, world, "R-1")
    with db.write() as conn:
        conversions.review_conversion(
            conn, reviewed["conversion_id"], "rejected", reason="fraud", by="merchant"
        )
    with db.write() as conn:
        assert conversions.approve_due_conversions(conn, now=utcnow() + timedelta(days=16)) == 1
    moves = [query(d.url) for d in deliveries(db, world.affiliate_id)]
    assert moves == [
        {"s": "pending", "p": "19.90"},
        {"s": "pending", "p": "19.90"},
        {"s": "rejected", "p": "0.00"},
        {"s": "approved", "p": "19.90"},
    ]


def test_deducted_service_fee_is_taken_off_the_payout(db, client):
    w = make_world(db, fee_rate="0.10", fee_mode="deducted")
    set_url(db, w.affiliate_id, "https://pb.example/?p={payout}")
    body = sale_for(client, w, "F-1")
    assert body["commission"] == "19.90"
    # 10 % of 19.90 is 1.99 (half up), so the affiliate gets 17.91.
    assert query(deliveries(db, w.affiliate_id)[0].url) == {"p": "17.91"}


def test_program_template_wins_and_others_queue_nothing(db, client, world):
    set_url(db, world.affiliate_id, "https://pb.example/default")
    set_url(db, world.affiliate_id, "https://pb.example/program", world.program.id)
    sale_for(client, world, "P-1")
    assert [d.url for d in deliveries(db, world.affiliate_id)] == ["https://pb.example/program"]
    # Affiliate B has no template; an unattributed order has no affiliate.
    statements: list[str] = []

    def spy(conn, cursor, statement, *args):
        if "FROM postback_" in statement or "INTO postback_" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        convert(client, world.other_program_key, "B-1", click(client, world.other_link.code))
        b_reads = list(statements)
        statements.clear()
        convert(client, world.program_key, "U-1")  # no click: unattributed
        unattributed_reads = [
            s for s in statements if "FROM postback_" in s or "INTO postback_" in s
        ]
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)
    assert len(b_reads) == 1 and "postback_urls" in b_reads[0]
    assert unattributed_reads == []
    assert deliveries(db, world.other_affiliate_id) == []
    assert len(deliveries(db, world.affiliate_id)) == 1


def test_an_overlong_url_is_logged_as_failed_not_sent(db, client, world, settings):
    set_url(db, world.affiliate_id, "https://pb.example/?" + "a={sub1}&" * 30)
    sale_for(client, world, "LONG-1", sub1="群" * 200)
    (d,) = deliveries(db, world.affiliate_id)
    assert d.status == "failed" and "longer than 4096" in d.last_error
    assert deliver_due(db, settings) == 0


# --- delivery --------------------------------------------------------------------------


def test_worker_delivers_with_macros_filled_and_encoded(db, client, world, allowed, server):
    server.body = b"thanks"
    template = (
        server.url("/pb") + "?cid={aff_click_id}&s1={sub1}&o={order_id}&p={payout}&st={status}"
    )
    set_url(db, world.affiliate_id, template)
    sale_for(client, world, "O 1/2&x", aff_click_id="A&B c/群", sub1="g+1 #2")
    assert deliver_due(db, allowed) == 1
    (got,) = server.requests
    assert query(got.path) == {
        "cid": "A&B c/群",
        "s1": "g+1 #2",
        "o": "O 1/2&x",
        "p": "19.90",
        "st": "pending",
    }
    assert "%E7%BE%A4" in got.path and "%26" in got.path and "%2B" in got.path
    (d,) = deliveries(db, world.affiliate_id)
    assert (d.status, d.attempts, d.last_code, d.response_snippet) == (
        "delivered",
        1,
        200,
        "thanks",
    )
    assert d.delivered_at is not None and d.last_error == ""
    assert deliver_due(db, allowed, now=utcnow() + timedelta(days=2)) == 0
    assert len(server.requests) == 1


def test_a_failing_target_is_retried_with_backoff_then_failed(db, client, world, allowed, server):
    server.status, server.body = 500, b"boom"
    set_url(db, world.affiliate_id, server.url("/pb") + "?o={order_id}")
    sale_for(client, world, "E-1")
    now = utcnow()
    waits = []
    for attempt in range(1, P.MAX_ATTEMPTS + 1):
        assert deliver_due(db, allowed, now=now) == 1
        (d,) = deliveries(db, world.affiliate_id)
        assert d.attempts == attempt and d.last_code == 500, d
        assert d.last_error == "answered 500" and d.response_snippet == "boom"
        if d.status == "failed":
            break
        assert d.status == "pending"
        waits.append(round((d.next_attempt_at - now).total_seconds()))
        # Not a second earlier.
        assert deliver_due(db, allowed, now=d.next_attempt_at - timedelta(seconds=1)) == 0
        now = d.next_attempt_at
    assert waits == [60, 300, 1800, 7200, 43200]
    assert d.status == "failed" and d.attempts == 6 and d.delivered_at is None
    assert len(server.requests) == 6
    assert deliver_due(db, allowed, now=now + timedelta(days=30)) == 0


def test_a_redirect_is_a_failed_attempt_and_not_followed(db, client, world, allowed, server):
    server.status, server.headers = 302, {"Location": server.url("/elsewhere")}
    set_url(db, world.affiliate_id, server.url("/pb"))
    sale_for(client, world, "R-1")
    assert deliver_due(db, allowed) == 1
    (d,) = deliveries(db, world.affiliate_id)
    assert (d.status, d.last_code, d.attempts) == ("pending", 302, 1)
    assert [r.path for r in server.requests] == ["/pb"]


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/pb",
        "http://localhost:{port}/pb",
        "http://[::1]:{port}/pb",
        "http://10.0.0.1/pb",
        "http://192.168.0.10/pb",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
    ],
)
def test_internal_targets_are_refused_and_never_retried(
    db, client, world, settings, server, target
):
    set_url(db, world.affiliate_id, target.format(port=server.port))
    sale_for(client, world, "S-1")
    assert deliver_due(db, settings) == 1
    (d,) = deliveries(db, world.affiliate_id)
    assert (d.status, d.attempts, d.last_code) == ("refused", 1, None)
    assert d.last_error.startswith("refused: ") and "address" in d.last_error
    assert deliver_due(db, settings, now=utcnow() + timedelta(days=2)) == 0
    assert server.requests == []


def test_a_dead_senders_claim_expires_and_its_late_answer_is_dropped(
    db, client, world, allowed, server
):
    set_url(db, world.affiliate_id, server.url("/pb"))
    sale_for(client, world, "D-1")
    now = utcnow()
    with db.write() as conn:
        ((delivery_id, _url, attempt),) = store.claim_due(conn, now, now + LEASE, 10)
    assert attempt == 1
    # Claimed rows are hidden from other senders until the lease runs out.
    assert deliver_due(db, allowed, now=now + LEASE - timedelta(seconds=1)) == 0
    assert deliver_due(db, allowed, now=now + LEASE) == 1
    (d,) = deliveries(db, world.affiliate_id)
    assert (d.status, d.attempts) == ("delivered", 2)
    with db.write() as conn:
        late = store.record_attempt(conn, delivery_id, 1, {"status": "failed"})
    assert late is False
    assert deliveries(db, world.affiliate_id)[0].status == "delivered"


def test_a_postback_whose_senders_keep_dying_ends_failed(db, client, world, allowed, server):
    set_url(db, world.affiliate_id, server.url("/pb"))
    sale_for(client, world, "D-2")
    now = utcnow()
    for _ in range(P.MAX_ATTEMPTS):  # taken, and never written down
        with db.write() as conn:
            assert len(store.claim_due(conn, now, now, 10)) == 1
    assert deliver_due(db, allowed, now=now) == 1
    (d,) = deliveries(db, world.affiliate_id)
    assert (d.status, d.attempts) == ("failed", P.MAX_ATTEMPTS + 1)
    assert d.last_error == f"no answer recorded after {P.MAX_ATTEMPTS} attempts"
    assert server.requests == []


def test_the_serve_process_sends_postbacks_in_the_background(db, allowed, server):
    w = make_world(db)
    set_url(db, w.affiliate_id, server.url("/pb"))
    background = allowed.model_copy(update={"postback_interval_seconds": 1})
    with app_client(db, background) as c:
        sale_for(c, w, "BG-1")
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(server.requests) == 1
