"""Platform settings: the operator's page and API, validation, audit, and what honours them."""

from __future__ import annotations

from sqlalchemy import event, insert, select

from factories.http import API, assert_error, bearer, snapshot
from factories.portal import PASSWORD, csrf_of, login, make_user, post_form
from factories.world import make_world
from tuike.config import DEV_SECRET, Settings, effective_settings
from tuike.services import audit, mail, platform
from tuike.services.clock import utcnow
from tuike.storage import tables as t

SETTINGS = f"{API}/platform/settings"
DEFAULTS = {
    "affiliate_signup_open": True,
    "merchant_signup_open": True,
    "platform_name": "tuike",
    "support_email": "",
    "default_cookie_days": 30,
}
FORM = {
    "affiliate_signup_open": "on",
    "merchant_signup_open": "on",
    "platform_name": "推客联盟",
    "support_email": "help@example.com",
    "default_cookie_days": "45",
}


def _operator(db, client) -> None:
    login(client, make_user(db, "operator", None, "op@example.com"))


def _audit(db) -> list[audit.AuditEntry]:
    with db.read() as conn:
        return list(audit.recent(conn, action="platform.update_settings"))


def test_defaults_until_the_operator_sets_anything(db, client):
    w = make_world(db)
    r = client.get(SETTINGS, headers=bearer(w.operator_key))
    assert r.status_code == 200 and r.json() == DEFAULTS
    with db.read() as conn:
        assert platform.load(conn).as_dict() == DEFAULTS
    assert {s.key for s in platform.REGISTRY} == set(DEFAULTS)


def test_operator_page_saves_audits_and_every_page_shows_the_name(db, client):
    _operator(db, client)
    page = client.get("/operator/settings")
    assert page.status_code == 200 and 'data-testid="settings-form"' in page.text
    assert 'href="/operator/settings"' in page.text  # in the operator's navigation
    r = post_form(client, "/operator/settings", "/operator/settings", FORM)
    assert r.status_code == 303 and r.headers["location"] == "/operator/settings?saved=1"
    page = client.get(r.headers["location"])
    assert 'data-testid="flash"' in page.text
    assert 'value="推客联盟"' in page.text and 'value="45"' in page.text
    assert "· 推客联盟</title>" in page.text and 'data-testid="brand">推客联盟<' in page.text
    assert 'href="mailto:help@example.com"' in page.text  # the footer of every page
    with db.read() as conn:
        assert platform.load(conn).as_dict() == {
            **DEFAULTS,
            "platform_name": "推客联盟",
            "support_email": "help@example.com",
            "default_cookie_days": 45,
        }
        stored = platform.history(conn)
    assert set(stored) == {"platform_name", "support_email", "default_cookie_days"}
    (entry,) = _audit(db)
    assert entry.actor.startswith("user:") and entry.target == "platform"
    assert entry.detail["changes"]["default_cookie_days"] == {"from": 30, "to": 45}
    assert "affiliate_signup_open" not in entry.detail["changes"]  # unchanged keys
    # Saving the same values again changes nothing and logs nothing.
    post_form(client, "/operator/settings", "/operator/settings", FORM)
    assert len(_audit(db)) == 1
    client.cookies.clear()
    assert 'data-testid="brand">推客联盟<' in client.get("/login").text


def test_bad_values_are_shown_and_change_nothing(db, client):
    _operator(db, client)
    post_form(client, "/operator/settings", "/operator/settings", FORM)
    before = snapshot(db)
    for over, field in (
        ({"default_cookie_days": "abc"}, "Default cookie window"),
        ({"default_cookie_days": "366"}, "Default cookie window"),
        ({"platform_name": "  "}, "Platform name"),
        ({"platform_name": "x" * 61}, "Platform name"),
        ({"support_email": "not an address"}, "Support email"),
        # one bad value among good ones: the good ones are not saved either
        ({"platform_name": "New name", "support_email": "nope"}, "Support email"),
    ):
        r = post_form(client, "/operator/settings", "/operator/settings", FORM | over)
        assert r.status_code == 400, over
        assert 'data-testid="error"' in r.text and field in r.text, (over, r.text[-2000:])
        assert snapshot(db) == before, over


def test_the_environment_table_never_shows_a_secret(db, client):
    _operator(db, client)
    page = client.get("/operator/settings").text
    assert DEV_SECRET not in page
    assert 'data-var="TUIKE_SECRET_KEY"' in page and "********" in page
    assert "development default" in page
    for name in Settings.model_fields:
        assert f'data-var="TUIKE_{name.upper()}"' in page
    shown = {
        e.variable: e
        for e in effective_settings(
            Settings(
                database_url="postgresql+psycopg://tuike:pa55word@db.internal/tuike",
                secret_key="s3cret-of-the-installation",
                privacy_salt="salt-of-the-installation",
            )
        )
    }
    assert shown["TUIKE_DATABASE_URL"].value == "postgresql+psycopg://tuike:***@db.internal/tuike"
    assert shown["TUIKE_SECRET_KEY"].value == "********"
    assert not shown["TUIKE_SECRET_KEY"].is_default
    assert not any("s3cret" in e.value or "salt-of" in e.value for e in shown.values())


def test_api_changes_are_typed_validated_all_or_nothing_and_audited(db, client):
    w = make_world(db)
    op = bearer(w.operator_key)
    before = snapshot(db)
    for body, field in (
        ({"affiliate_signup_open": "no"}, "affiliate_signup_open"),
        ({"default_cookie_days": "30"}, "default_cookie_days"),
        ({"default_cookie_days": -1}, "default_cookie_days"),
        ({"platform_name": None}, "platform_name"),
        ({"colour": "red"}, "colour"),
        ({"platform_name": "Fine", "support_email": "bad"}, "support_email"),
    ):
        r = client.patch(SETTINGS, json=body, headers=op)
        assert_error(r, 400, field)
        assert snapshot(db) == before, body
    r = client.patch(
        SETTINGS, json={"merchant_signup_open": False, "platform_name": " Shop Net "}, headers=op
    )
    assert r.status_code == 200, r.text
    assert r.json() == {**DEFAULTS, "merchant_signup_open": False, "platform_name": "Shop Net"}
    assert client.get(SETTINGS, headers=op).json() == r.json()
    (entry,) = _audit(db)
    assert entry.actor.startswith("key:")
    assert entry.detail["changes"]["merchant_signup_open"] == {"from": True, "to": False}


def test_closed_sign_up_refuses_in_the_portal_and_writes_nothing(db, client):
    w = make_world(db)
    r = client.patch(
        SETTINGS,
        json={"affiliate_signup_open": False, "merchant_signup_open": False},
        headers=bearer(w.operator_key),
    )
    assert r.status_code == 200
    before = snapshot(db)
    for kind in ("affiliate", "merchant"):
        page = client.get(f"/signup/{kind}")
        assert page.status_code == 403 and 'data-testid="signup-closed"' in page.text
        assert 'data-testid="signup-form"' not in page.text
    assert 'href="/signup/' not in client.get("/").text
    assert 'href="/signup/' not in client.get("/login").text
    # A form opened while sign-up was open is refused too.
    form = {
        "name": "Late",
        "email": "late@example.com",
        "password": PASSWORD,
        "company": "Late Shop",
        "channel_kind": "blog",
        "channel_name": "b",
        "channel_url": "https://b.example",
        "csrf": csrf_of(client.get("/login").text),
    }
    for kind in ("affiliate", "merchant"):
        r = client.post(f"/signup/{kind}", data=form)
        assert r.status_code == 403 and 'data-testid="signup-closed"' in r.text
    assert snapshot(db) == before


def test_new_programs_take_the_default_cookie_window(db, client):
    w = make_world(db)
    client.patch(SETTINGS, json={"default_cookie_days": 7}, headers=bearer(w.operator_key))
    body = {"name": "P", "landing_url": "https://shop.example.com/", "commission_plan": {}}
    r = client.post(f"{API}/programs", json=body, headers=bearer(w.merchant_key))
    assert r.status_code == 201 and r.json()["cookie_days"] == 7
    r = client.post(
        f"{API}/programs", json={**body, "cookie_days": 60}, headers=bearer(w.merchant_key)
    )
    assert r.status_code == 201 and r.json()["cookie_days"] == 60


def test_mails_carry_the_platform_name_and_support_address(db, client):
    w = make_world(db)
    client.patch(
        SETTINGS,
        json={"platform_name": "ShopNet", "support_email": "help@shopnet.example"},
        headers=bearer(w.operator_key),
    )
    email = make_user(db, "affiliate", w.affiliate_id, "anna@example.com")
    post_form(client, "/password/forgot", "/password/forgot", {"email": email})
    with db.read() as conn:
        (message,) = mail.outbox(conn)
    assert "ShopNet" in message.subject and "help@shopnet.example" in message.body


def test_page_renders_read_the_settings_from_memory(db, client):
    state = client.app.state.tuike
    client.get("/login")  # the first render reads them
    statements: list[str] = []

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert client.get("/login").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert not [s for s in statements if "platform_settings" in s or "cache_versions" in s]
    # A change made elsewhere (another worker) is seen once the version is polled again.
    with db.write() as conn:
        platform.update(conn, {"platform_name": "Elsewhere"}, actor="test")
    cache = platform.SettingsCache(db, poll_seconds=3600)
    assert cache.get().platform_name == "Elsewhere"
    with db.write() as conn:
        platform.update(conn, {"platform_name": "Again"}, actor="test")
    assert cache.get().platform_name == "Elsewhere"  # not polled yet
    cache.invalidate()
    assert cache.get().platform_name == "Again"
    state.platform.invalidate()
    assert 'data-testid="brand">Again<' in client.get("/login").text


def test_a_stored_value_that_no_longer_validates_reads_as_the_default(db):
    with db.write() as conn:
        conn.execute(
            insert(t.platform_settings).values(
                key="default_cookie_days", value="lots", updated_at=utcnow(), updated_by="old"
            )
        )
        conn.execute(
            insert(t.platform_settings).values(
                key="retired_key", value=1, updated_at=utcnow(), updated_by="old"
            )
        )
    with db.read() as conn:
        assert platform.load(conn) == platform.PlatformSettings()
        assert conn.execute(select(t.platform_settings.c.key)).scalars().all()
