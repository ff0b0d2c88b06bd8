"""Affiliate postbacks (spec section 5): templates, queueing, delivery, SSRF, portal, API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event, select, update

from factories.http import API, assert_error, bearer, click, convert, post, snapshot
from factories.portal import csrf_of, login, make_user, post_form
from factories.receiver import Receiver, receiver
from factories.world import World, make_world
from tuike.domain import postbacks as P
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.services import catalog as cat
from tuike.services import conversions
from tuike.services import postbacks as svc
from tuike.services.clock import utcnow
from tuike.storage import postbacks as store
from tuike.storage import tables as t
from tuike.workers.postbacks import LEASE, deliver_due

ALL = "https://pb.example/{event}?" + "&".join(f"{m}={{{m}}}" for m in P.MACROS)


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


@pytest.fixture
def allowed(settings: Any) -> Any:
    """Settings that let postbacks reach the receiver on loopback."""
    return settings.model_copy(update={"outbound_allow_networks": "127.0.0.0/8"})


@pytest.fixture
def open_client(db: Any, allowed: Any) -> Iterator[Any]:
    """A client of an application whose postbacks may reach loopback."""
    from fastapi.testclient import TestClient

    from tuike.web.app import create_app

    with TestClient(create_app(allowed, db), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def server() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def set_url(db: Any, affiliate_id: int, template: str, program_id: int = 0) -> None:
    with db.write() as conn:
        svc.set_postback_url(conn, affiliate_id, program_id, template)


def deliveries(db: Any, affiliate_id: int) -> list[P.Delivery]:
    """The affiliate's deliveries, oldest first."""
    with db.read() as conn:
        return list(reversed(store.list_deliveries(conn, affiliate_id, 500)))


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def sale_for(client: Any, w: World, order_id: str, **click_params: str) -> dict[str, Any]:
    """A 199.00 sale attributed to affiliate A by a fresh click."""
    return convert(client, w.program_key, order_id, click(client, w.link.code, **click_params))


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
        row = conversions.get_conversion(conn, cid)
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
    import time

    from fastapi.testclient import TestClient

    from tuike.web.app import create_app

    w = make_world(db)
    set_url(db, w.affiliate_id, server.url("/pb"))
    background = allowed.model_copy(update={"postback_interval_seconds": 1})
    with TestClient(create_app(background, db), follow_redirects=False) as c:
        sale_for(c, w, "BG-1")
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(server.requests) == 1


# --- the portal ------------------------------------------------------------------------


def test_portal_sets_templates_and_test_fires(db, open_client, world, server):
    c = open_client
    login(c, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    page = c.get("/affiliate/postbacks")
    assert page.status_code == 200
    assert 'href="/affiliate/postbacks"' in page.text and "{aff_click_id}" in page.text
    before = snapshot(db)
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks",
        {"program_id": "0", "url_template": "https://pb.example/?x={nope}"},
    )
    assert r.status_code == 400 and "unknown macro {nope}" in r.text
    assert snapshot(db) == before
    server.body = b"hello postback"
    template = server.url("/pb") + "?o={order_id}&p={payout}"
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks",
        {"program_id": "0", "url_template": template},
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert 'data-testid="flash"' in page.text and "{order_id}" in page.text
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks",
        {"program_id": str(world.program.id), "url_template": server.url("/program")},
    )
    assert r.status_code == 303
    assert server.url("/program") in c.get("/affiliate/postbacks").text

    r = post_form(c, "/affiliate/postbacks", "/affiliate/postbacks/test", {"program_id": "0"})
    assert r.status_code == 200
    assert 'data-testid="test-result"' in r.text
    assert 'data-testid="test-code">200<' in r.text and "hello postback" in r.text
    (got,) = server.requests
    assert query(got.path)["o"].startswith("TEST-") and query(got.path)["p"] == "1.00"
    (d,) = deliveries(db, world.affiliate_id)
    assert d.is_test and d.status == "delivered" and d.conversion_id is None
    assert f'data-delivery="{d.id}"' in r.text

    # A URL tried without saving it, which the guard refuses: the reason is shown.
    r = post_form(
        c,
        "/affiliate/postbacks",
        "/affiliate/postbacks/test",
        {"program_id": "0", "url_template": "http://169.254.169.254/latest/meta-data/"},
    )
    assert r.status_code == 200 and "169.254.169.254 is a link-local address" in r.text
    assert len(server.requests) == 1

    r = post_form(c, "/affiliate/postbacks", f"/affiliate/postbacks/{world.program.id}/delete", {})
    assert r.status_code == 303
    assert server.url("/program") not in c.get("/affiliate/postbacks").text


def test_portal_test_fire_to_loopback_is_refused_when_not_allowed(db, client, world, server):
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    set_url(db, world.affiliate_id, server.url("/pb"))
    r = post_form(client, "/affiliate/postbacks", "/affiliate/postbacks/test", {"program_id": "0"})
    assert r.status_code == 200
    assert "127.0.0.1 is a loopback address" in r.text
    assert server.requests == []
    assert deliveries(db, world.affiliate_id)[0].status == "refused"


def test_test_fires_are_limited_per_minute(db, client, world):
    login(client, make_user(db, "affiliate", world.affiliate_id, "anna@example.com"))
    set_url(db, world.affiliate_id, "http://10.0.0.1/pb")  # refused at once: no network wait
    token = csrf_of(client.get("/affiliate/postbacks").text)
    codes = [
        client.post(
            "/affiliate/postbacks/test", data={"program_id": "0", "csrf": token}
        ).status_code
        for _ in range(svc.TESTS_PER_MINUTE + 1)
    ]
    assert codes == [200] * svc.TESTS_PER_MINUTE + [429]
    r = client.post(
        f"{API}/affiliates/{world.affiliate_id}/postbacks/test",
        json={},
        headers=bearer(world.affiliate_key),
    )
    assert_error(r, 429)


def test_affiliates_never_see_or_change_each_others_postbacks(db, client, world):
    set_url(db, world.affiliate_id, "https://pb.example/anna-secret")
    set_url(db, world.affiliate_id, "https://pb.example/anna-program", world.program.id)
    sale_for(client, world, "T-1")
    login(client, make_user(db, "affiliate", world.other_affiliate_id, "bob@example.com"))
    page = client.get("/affiliate/postbacks").text
    assert "anna-" not in page and 'data-delivery="' not in page
    before = snapshot(db)
    for program_id in (0, world.program.id):
        r = post_form(
            client, "/affiliate/postbacks", f"/affiliate/postbacks/{program_id}/delete", {}
        )
        assert r.status_code == 404
    assert snapshot(db) == before


# --- the API -----------------------------------------------------------------------------


def test_api_templates_test_and_deliveries(db, client, allowed, world, server):
    from fastapi.testclient import TestClient

    from tuike.web.app import create_app

    base = f"{API}/affiliates/{world.affiliate_id}"
    me = bearer(world.affiliate_key)
    before = snapshot(db)
    r = client.put(
        f"{base}/postbacks/0", json={"url_template": "https://pb.example/?a={x}"}, headers=me
    )
    assert_error(r, 400, "url_template")
    r = client.put(f"{base}/postbacks/0", json={"url_template": "x", "extra": 1}, headers=me)
    assert_error(r, 400)
    assert snapshot(db) == before
    with db.write() as conn:
        m = conn.execute(
            select(t.memberships.c.id).where(
                t.memberships.c.program_id == world.other_program.id,
                t.memberships.c.affiliate_id == world.affiliate_id,
            )
        ).scalar_one()
        conn.execute(update(t.memberships).where(t.memberships.c.id == m).values(status="banned"))
    before = snapshot(db)
    r = client.put(
        f"{base}/postbacks/{world.other_program.id}",
        json={"url_template": "https://pb.example/"},
        headers=me,
    )
    assert_error(r, 409)
    assert_error(client.delete(f"{base}/postbacks/0", headers=me), 404)
    assert snapshot(db) == before

    r = client.put(
        f"{base}/postbacks/0", json={"url_template": server.url("/pb") + "?s={status}"}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["program_id"] == 0 and r.json()["url_template"].endswith("?s={status}")
    r = client.put(
        f"{base}/postbacks/{world.program.id}",
        json={"url_template": server.url("/program")},
        headers=bearer(world.operator_key),  # the operator may act for an affiliate
    )
    assert r.status_code == 200, r.text
    listed = client.get(f"{base}/postbacks", headers=me).json()
    assert [u["program_id"] for u in listed] == [0, world.program.id]

    with TestClient(create_app(allowed, db), follow_redirects=False) as c:
        r = c.post(f"{base}/postbacks/test", json={"program_id": world.program.id}, headers=me)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["last_code"], r.json()["is_test"]) == (
        "delivered",
        200,
        True,
    )
    assert [q.path.split("?")[0] for q in server.requests] == ["/program"]

    sale_for(client, world, "API-1")
    log = client.get(f"{base}/postback-deliveries?limit=10", headers=me).json()
    assert [(d["status"], d["is_test"]) for d in log] == [("pending", False), ("delivered", True)]
    assert log[0]["url"] == server.url("/program") and log[0]["next_attempt_at"]

    # Affiliate B, merchants and program keys get 404 for A's postbacks and change nothing.
    before = snapshot(db)
    for key in (world.other_affiliate_key, world.merchant_key, world.program_key):
        h = bearer(key)
        assert_error(client.get(f"{base}/postbacks", headers=h), 404)
        assert_error(client.get(f"{base}/postback-deliveries", headers=h), 404)
        assert_error(
            client.put(
                f"{base}/postbacks/0", json={"url_template": "https://e.example/"}, headers=h
            ),
            404,
        )
        assert_error(client.delete(f"{base}/postbacks/0", headers=h), 404)
        assert_error(client.post(f"{base}/postbacks/test", json={}, headers=h), 404)
    assert snapshot(db) == before
    assert client.delete(f"{base}/postbacks/{world.program.id}", headers=me).status_code == 204
    assert [u["program_id"] for u in client.get(f"{base}/postbacks", headers=me).json()] == [0]
