"""Identity marks: where affiliates sign in and up from, and their payout accounts, hashed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from factories.portal import PASSWORD, login, make_user, post_form
from factories.world import make_world
from tuike.domain.privacy import device_hash, identity_hash, ip_hash
from tuike.services import identity
from tuike.services.clock import utcnow
from tuike.storage import tables
from tuike.web.app import create_app

IP = "203.0.113.9"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) MicroMessenger/8.0"


def marks(db: Any, owner_type: str, owner_id: int) -> set[tuple[str, str]]:
    m = tables.identity_marks.c
    with db.read() as conn:
        rows = conn.execute(
            select(m.kind, m.value_hash).where(m.owner_type == owner_type, m.owner_id == owner_id)
        )
        return {(r.kind, r.value_hash) for r in rows}


def browser(db: Any, settings: Any, ip: str = IP) -> TestClient:
    """A client whose requests come from ``ip`` with a phone's user agent."""
    app = create_app(settings, db)
    return TestClient(app, client=(ip, 50000), headers={"User-Agent": UA}, follow_redirects=False)


def test_a_sign_in_marks_the_address_and_browser_of_the_account_and_the_user(db, settings):
    w = make_world(db)
    email = make_user(db, "affiliate", w.affiliate_id, "anna@example.com")
    salt = settings.privacy_salt
    expected = {
        ("ip", ip_hash(IP, salt)),
        ("device", device_hash(device_id=None, user_agent=UA, salt=salt)),
    }
    with browser(db, settings) as c:
        assert login(c, email, "wrong password!").status_code == 400
        assert marks(db, "affiliate", w.affiliate_id) == set()  # a failed sign-in marks nothing
        assert login(c, email).status_code == 303
    assert marks(db, "affiliate", w.affiliate_id) == expected
    with db.read() as conn:
        user_id = conn.execute(
            select(tables.users.c.id).where(tables.users.c.email == email)
        ).scalar_one()
    assert marks(db, "user", user_id) == expected
    # Seen again later: the same marks, last_seen moved.
    with db.write() as conn:
        conn.execute(
            tables.identity_marks.update().values(last_seen=utcnow() - timedelta(days=400))
        )
    with browser(db, settings) as c:
        assert login(c, email).status_code == 303
    with db.read() as conn:
        found = identity.matching(
            conn,
            "affiliate",
            w.affiliate_id,
            [ip_hash(IP, salt)],
            now=utcnow(),
            max_age=timedelta(days=1),
        )
    assert found == [identity.Mark("ip", ip_hash(IP, salt))]
    assert len(marks(db, "affiliate", w.affiliate_id)) == 2


def test_operators_are_not_marked_and_merchants_are(db, settings):
    w = make_world(db)
    make_user(db, "operator", None, "op@example.com")
    make_user(db, "merchant", w.merchant_id, "boss@example.com")
    with browser(db, settings) as c:
        assert login(c, "op@example.com").status_code == 303
    with browser(db, settings, "198.51.100.7") as c:
        assert login(c, "boss@example.com").status_code == 303
    with db.read() as conn:
        owners = {r.owner_type for r in conn.execute(select(tables.identity_marks))}
    assert owners == {"merchant", "user"}
    assert ("ip", ip_hash("198.51.100.7", settings.privacy_salt)) in marks(
        db, "merchant", w.merchant_id
    )


def test_sign_up_marks_the_address_browser_and_email(db, settings):
    salt = settings.privacy_salt
    with browser(db, settings) as c:
        r = c.post(
            "/api/v1/signup/affiliate",
            json={
                "name": "Bo",
                "email": "Bo@Example.com",
                "password": PASSWORD,
                "channels": [{"kind": "blog", "name": "b", "url": "https://b.example"}],
            },
        )
        assert r.status_code == 201, r.text
        api_affiliate = r.json()["owner_id"]
        page = post_form(
            c,
            "/signup/affiliate",
            "/signup/affiliate",
            {
                "name": "Cy",
                "email": "cy@example.com",
                "password": PASSWORD,
                "channel_kind": "im",
                "channel_name": "group",
                "channel_url": "wechat-group-1",
            },
        )
        assert page.status_code == 303, page.text
    assert marks(db, "affiliate", api_affiliate) == {
        ("ip", ip_hash(IP, salt)),
        ("device", device_hash(device_id=None, user_agent=UA, salt=salt)),
        ("email", identity_hash("bo@example.com", salt)),
    }
    with db.read() as conn:
        portal_affiliate = conn.execute(
            select(tables.affiliates.c.id).where(tables.affiliates.c.email == "cy@example.com")
        ).scalar_one()
    assert ("email", identity_hash("cy@example.com", salt)) in marks(
        db, "affiliate", portal_affiliate
    )


def test_every_payout_account_an_affiliate_gives_stays_marked(db, settings, client):
    w = make_world(db)
    email = make_user(db, "affiliate", w.affiliate_id, "anna@example.com")
    salt = settings.privacy_salt
    assert login(client, email).status_code == 303
    for account in ("anna@alipay.example", "138 0000 1111"):
        r = post_form(
            client,
            "/affiliate/profile",
            "/affiliate/profile",
            {
                "name": "Anna",
                "timezone": "Asia/Shanghai",
                "payout_method": "alipay",
                "payout_account": account,
                "payout_name": "Anna",
            },
        )
        assert r.status_code == 200, r.text
    payout = {v for k, v in marks(db, "affiliate", w.affiliate_id) if k == "payout"}
    assert payout == {
        identity_hash("anna@alipay.example", salt),
        identity_hash("13800001111", salt),
    }
