"""The click tracker, GET/HEAD /c/{code} (spec section 1), on both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories.http import bearer, count, membership_id, patch_program
from factories.world import World, make_world
from tuike.domain import ids
from tuike.storage import tables
from tuike.web.app import create_app

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


# --- helpers -------------------------------------------------------------------------


def stored_nothing(db: Any) -> bool:
    return count(db, tables.clicks) == 0 and count(db, tables.click_rollups) == 0


def click_rows(db: Any) -> list[Any]:
    with db.read() as conn:
        return conn.execute(select(tables.clicks).order_by(tables.clicks.c.id)).all()


def rollup_totals(db: Any) -> tuple[int, int, int]:
    r = tables.click_rollups
    with db.read() as conn:
        row = conn.execute(
            select(
                func.coalesce(func.sum(r.c.clicks), 0),
                func.coalesce(func.sum(r.c.unique_clicks), 0),
                func.coalesce(func.sum(r.c.bot_clicks), 0),
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def click_id_of(response: Any, param: str = "tk_click") -> str:
    values = parse_qs(urlsplit(response.headers["location"]).query)[param]
    assert len(values) == 1, response.headers["location"]
    return values[0]


def set_cookies(response: Any) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_header(response: Any, name: str) -> str:
    found = [c for c in set_cookies(response) if c.startswith(f"{name}=")]
    assert len(found) == 1, set_cookies(response)
    return found[0]


def cookie_attrs(raw: str) -> dict[str, str]:
    attrs = {}
    for part in raw.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attrs[name.lower()] = value
    return attrs


def assert_small_html_page(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert "tk_click" not in response.headers.get("set-cookie", "")
    body = response.text
    assert "<html" in body.lower()
    assert len(body) < 2000
    for leak in ("Traceback", 'File "', "Exception", "sqlalchemy", "tuike/"):
        assert leak not in body


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


def app_client(db: Any, settings: Any, address: str = "203.0.113.77", **changes: Any) -> Any:
    app = create_app(settings.model_copy(update=changes), db)
    return TestClient(app, follow_redirects=False, client=(address, 50000))


@pytest.fixture
def ip_client(db: Any, settings: Any) -> Iterator[Any]:
    with app_client(db, settings) as c:
        yield c


# --- the redirect --------------------------------------------------------------------


def test_click_redirects_to_landing_with_a_fresh_click_id(db, client, world):
    before = datetime.now(UTC)
    r = client.get(f"/c/{world.link.code}")
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["location"])
    assert (loc.scheme, loc.netloc, loc.path) == ("https", "shop.example.com", "/")
    click_id = click_id_of(r)
    assert ids.is_ulid(click_id)
    assert before - timedelta(seconds=1) <= ids.ulid_time(click_id) <= datetime.now(UTC)
    assert r.headers["cache-control"] == "no-store"
    (row,) = click_rows(db)
    assert row.id == click_id
    assert row.landing_url == r.headers["location"]

    time.sleep(0.002)  # ULIDs order by millisecond
    again = client.get(f"/c/{world.link.code}")
    second = click_id_of(again)
    assert second != click_id
    assert second > click_id  # time-ordered ids


def test_click_cookie_is_httponly_lax_with_the_program_cookie_window(client, world):
    r = client.get(f"/c/{world.link.code}")
    raw = cookie_header(r, "tk_click")
    assert raw.split(";")[0] == f"tk_click={click_id_of(r)}"
    attrs = cookie_attrs(raw)
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert attrs["max-age"] == str(30 * 86400)
    assert attrs.get("path") == "/"
    assert "secure" not in attrs  # plain http

    patch_program(client, world, cookie_days=7)
    r = client.get(f"/c/{world.link.code}")
    assert cookie_attrs(cookie_header(r, "tk_click"))["max-age"] == str(7 * 86400)

    r = client.get(f"https://testserver/c/{world.link.code}")
    assert r.status_code == 302
    attrs = cookie_attrs(cookie_header(r, "tk_click"))
    assert "secure" in attrs and "httponly" in attrs


def test_existing_query_and_fragment_of_the_landing_url_are_kept(db, client, world):
    target = "https://shop.example.com/item?id=5&utm_source=blog&q=%E6%89%8B%E6%9C%BA#reviews"
    r = client.get(f"/c/{world.link.code}?url={quote(target, safe='')}")
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["location"])
    assert (loc.scheme, loc.netloc, loc.path) == ("https", "shop.example.com", "/item")
    assert loc.fragment == "reviews"
    pairs = parse_qsl(loc.query)
    assert pairs[:3] == [("id", "5"), ("utm_source", "blog"), ("q", "手机")]
    assert pairs[3][0] == "tk_click" and ids.is_ulid(pairs[3][1])
    assert click_rows(db)[0].landing_url == r.headers["location"]


def test_program_can_rename_the_click_parameter(client, world):
    patch_program(client, world, click_param="aff_cid")
    forged = quote("https://shop.example.com/?aff_cid=forged&a=1", safe="")
    r = client.get(f"/c/{world.link.code}?url={forged}")
    assert r.status_code == 302, r.text
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert "tk_click" not in query
    assert query["a"] == ["1"]
    assert query["aff_cid"] == [click_id_of(r, "aff_cid")]  # replaced, not appended
    assert query["aff_cid"] != ["forged"]
    # The cookie keeps its documented name.
    assert cookie_header(r, "tk_click").startswith(f"tk_click={query['aff_cid'][0]};")

    r = client.patch(
        f"/api/v1/programs/{world.program.id}",
        json={"click_param": "a b&c"},
        headers=bearer(world.merchant_key),
    )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "click_param"
    r = client.get(f"/c/{world.link.code}")
    assert click_id_of(r, "aff_cid")  # unchanged


# --- what is recorded ----------------------------------------------------------------


def test_click_records_subs_aff_click_id_referer_user_agent_and_device(db, client, world):
    r = client.get(
        f"/c/{world.link.code}?sub2=spring&sub5=group%2042&aff_click_id=AFF-77",
        headers={"user-agent": IPHONE, "referer": "https://weibo.com/post/1"},
    )
    assert r.status_code == 302, r.text
    (row,) = click_rows(db)
    assert row.id == click_id_of(r)
    assert (row.program_id, row.affiliate_id, row.link_id) == (
        world.program.id,
        world.affiliate_id,
        world.link.id,
    )
    # The link's own sub1 ("wechat") merged with the request's sub ids.
    assert (row.sub1, row.sub2, row.sub3, row.sub4, row.sub5) == (
        "wechat",
        "spring",
        "",
        "",
        "group 42",
    )
    assert row.aff_click_id == "AFF-77"
    assert row.referer == "https://weibo.com/post/1"
    assert row.user_agent == IPHONE
    assert row.device == "mobile"
    assert row.is_bot is False
    assert row.creative_id is None
    assert abs(row.clicked_at - datetime.now(UTC)) < timedelta(seconds=10)

    # A sub id in the request wins over the link's own.
    client.get(f"/c/{world.link.code}?sub1=moments")
    assert click_rows(db)[-1].sub1 == "moments"


DEVICES = [
    (IPHONE, "mobile"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0 Mobile Safari/537.36", "mobile"),
    ("Mozilla/5.0 (iPhone) AppleWebKit MicroMessenger/8.0.47 NetType/WIFI", "mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15", "tablet"),
    (DESKTOP, "desktop"),
]


def test_device_class_of_each_click(db, client, world):
    for user_agent, _ in DEVICES:
        client.get(f"/c/{world.link.code}", headers={"user-agent": user_agent})
    assert [row.device for row in click_rows(db)] == [device for _, device in DEVICES]


def test_ip_is_truncated_by_default_or_kept_as_configured(db, ip_client, settings, world):
    ip_client.get(f"/c/{world.link.code}")
    with app_client(db, settings, address="2001:db8:abcd:12:1:2:3:4") as c:
        c.get(f"/c/{world.link.code}")
    with app_client(db, settings, ip_storage="full") as c:
        c.get(f"/c/{world.link.code}")
    with app_client(db, settings, ip_storage="hashed") as c:
        c.get(f"/c/{world.link.code}")
    v4, v6, full, hashed = click_rows(db)
    assert v4.ip == "203.0.113.0"
    assert v6.ip == "2001:db8:abcd::"
    assert full.ip == "203.0.113.77"
    assert hashed.ip.startswith("h:")
    assert "203.0.113" not in hashed.ip


def test_country_comes_from_the_configured_cdn_header(db, settings, world):
    with app_client(db, settings, country_header="CF-IPCountry") as c:
        c.get(f"/c/{world.link.code}", headers={"cf-ipcountry": "cn"})
    assert click_rows(db)[0].country == "CN"


# --- unique and bot clicks -----------------------------------------------------------


def test_same_visitor_twice_counts_one_unique_click(db, client, world):
    first = client.get(f"/c/{world.link.code}", headers={"user-agent": IPHONE})
    second = client.get(f"/c/{world.link.code}", headers={"user-agent": IPHONE})
    assert first.status_code == second.status_code == 302
    a, b = click_rows(db)
    assert (a.is_unique, b.is_unique) == (True, False)
    assert a.visitor == b.visitor
    assert rollup_totals(db) == (2, 1, 0)


def test_returning_browser_is_recognised_by_its_cookie_even_from_another_ip(db, settings, world):
    app = create_app(settings, db)
    with TestClient(app, follow_redirects=False, client=("203.0.113.77", 5000)) as home:
        home.get(f"/c/{world.link.code}", headers={"user-agent": IPHONE})
        visitor_cookie = home.cookies.get("tk_v")
    assert visitor_cookie
    with TestClient(app, follow_redirects=False, client=("198.51.100.9", 5000)) as moved:
        moved.cookies.set("tk_v", visitor_cookie)
        moved.get(f"/c/{world.link.code}", headers={"user-agent": IPHONE})
    assert [row.is_unique for row in click_rows(db)] == [True, False]
    assert rollup_totals(db) == (2, 1, 0)


def test_different_visitors_and_different_links_are_each_unique(db, settings, world):
    app = create_app(settings, db)
    with TestClient(app, follow_redirects=False, client=("203.0.113.1", 5000)) as one:
        one.get(f"/c/{world.link.code}", headers={"user-agent": IPHONE})
        one.get(f"/c/{world.other_link.code}", headers={"user-agent": IPHONE})
    with TestClient(app, follow_redirects=False, client=("198.51.100.2", 5000)) as two:
        two.get(f"/c/{world.link.code}", headers={"user-agent": DESKTOP})
    assert [row.is_unique for row in click_rows(db)] == [True, True, True]
    assert rollup_totals(db) == (3, 3, 0)


def test_bot_click_is_redirected_but_counted_as_bot_not_click(db, client, world):
    r = client.get(f"/c/{world.link.code}", headers={"user-agent": GOOGLEBOT})
    assert r.status_code == 302
    (row,) = click_rows(db)
    assert row.is_bot is True
    assert row.is_unique is False
    assert row.device == "bot"
    assert rollup_totals(db) == (0, 0, 1)
    client.get(f"/c/{world.link.code}", headers={"user-agent": DESKTOP})
    assert rollup_totals(db) == (1, 1, 1)


# --- deep links ----------------------------------------------------------------------


ALLOWED_TARGETS = [
    "https://shop.example.com/p/1",
    "https://www.shop.example.com/sale?x=1",
    "https://a.b.shop.example.com/",
    "http://m.example.cn/item/9",
    "https://SHOP.Example.com/upper",
]
REFUSED_TARGETS = [
    "https://shop.example.com.evil.com/",
    "https://evil.com/?x=shop.example.com",
    "https://evil.com/shop.example.com",
    "https://evil.com#shop.example.com",
    "https://evilshop.example.com/",
    "https://example.cn/",
    "javascript:alert(document.cookie)",
    "JaVaScRiPt://shop.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://shop.example.com@evil.com/",
    "https://user:pw@shop.example.com/",
    "//evil.com/",
    "/relative/path",
    "ftp://shop.example.com/file",
    "https://evil.com\\@shop.example.com/",
    "https://shop.example.com\r\nSet-Cookie: x=1",
    "http://127.0.0.1/",
    "https://[::1",  # broken IPv6 literal
    "https://shop.example.com:abc/",  # port is not a number
    "https://shop.example.com:99999/",  # port out of range
]


def test_deep_link_on_an_allowed_domain_or_subdomain(db, client, world):
    for n, target in enumerate(ALLOWED_TARGETS, start=1):
        r = client.get(f"/c/{world.link.code}?url={quote(target, safe='')}")
        assert r.status_code == 302, (target, r.text)
        loc = urlsplit(r.headers["location"])
        want = urlsplit(target)
        assert (loc.scheme, loc.netloc, loc.path) == (want.scheme, want.netloc, want.path)
        assert click_id_of(r) == click_rows(db)[-1].id
        assert count(db, tables.clicks) == n


def test_deep_link_elsewhere_is_refused_and_not_stored(db, client, world):
    for target in REFUSED_TARGETS:
        r = client.get(f"/c/{world.link.code}?url={quote(target, safe='')}")
        assert_small_html_page(r, 400)
        assert stored_nothing(db), target


# --- links that do not take traffic --------------------------------------------------


def test_unknown_or_malformed_code_is_a_small_404_page(db, client, world):
    for path in [
        "/c/Zz9Zz9Zz9",  # well-formed, unknown
        "/c/abc",  # too short
        "/c/" + "a" * 40,  # too long
        "/c/abc.defgh",  # not URL-safe base62
        "/c/abc%27%20OR%201%3D1--",  # injection attempt
    ]:
        assert_small_html_page(client.get(path), 404)
    assert stored_nothing(db)


def test_paused_link_answers_410_then_fallback_and_stores_nothing(db, client, world):
    r = client.patch(
        f"/api/v1/links/{world.link.id}",
        json={"status": "paused"},
        headers=bearer(world.affiliate_key),
    )
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert_small_html_page(client.get(f"/c/{world.link.code}"), 410)
    assert stored_nothing(db)

    patch_program(client, world, fallback_url="https://shop.example.com/offers?from=aff")
    r = client.get(f"/c/{world.link.code}?sub2=x")
    assert r.status_code == 302
    assert r.headers["location"] == "https://shop.example.com/offers?from=aff"
    assert "tk_click" not in r.headers.get("set-cookie", "")
    assert stored_nothing(db)

    client.patch(
        f"/api/v1/links/{world.link.id}",
        json={"status": "active"},
        headers=bearer(world.affiliate_key),
    )
    r = client.get(f"/c/{world.link.code}")
    assert r.status_code == 302 and click_id_of(r)
    assert count(db, tables.clicks) == 1


def test_paused_program_answers_410_or_fallback_and_stores_nothing(db, client, world):
    patch_program(client, world, status="paused")
    assert_small_html_page(client.get(f"/c/{world.link.code}"), 410)
    patch_program(client, world, fallback_url="https://m.example.cn/closed")
    r = client.get(f"/c/{world.link.code}")
    assert r.status_code == 302
    assert r.headers["location"] == "https://m.example.cn/closed"
    assert stored_nothing(db)
    # Another merchant's program keeps working.
    assert client.get(f"/c/{world.other_link.code}").status_code == 302


def test_banned_affiliate_link_answers_410_and_stores_nothing(db, client, world):
    mid = membership_id(client, world, world.affiliate_id)
    r = client.patch(
        f"/api/v1/memberships/{mid}", json={"status": "banned"}, headers=bearer(world.merchant_key)
    )
    assert r.status_code == 200 and r.json()["status"] == "banned"
    assert_small_html_page(client.get(f"/c/{world.link.code}"), 410)
    assert stored_nothing(db)


def test_a_pause_made_on_one_worker_reaches_the_others_within_seconds(db, settings, world):
    worker_a = TestClient(create_app(settings, db), follow_redirects=False)
    worker_b = TestClient(create_app(settings, db), follow_redirects=False)
    with worker_a, worker_b:
        assert worker_b.get(f"/c/{world.link.code}").status_code == 302  # now cached on b
        r = worker_a.patch(
            f"/api/v1/links/{world.link.id}",
            json={"status": "paused"},
            headers=bearer(world.affiliate_key),
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 5
        while worker_b.get(f"/c/{world.link.code}").status_code != 410:
            assert time.monotonic() < deadline, "worker b still sends traffic to a paused link"
            time.sleep(0.1)
        # The cache polls a version counter once a second; after that, nothing is recorded.
        assert time.monotonic() < deadline - 3
        stored = count(db, tables.clicks)
        assert worker_b.get(f"/c/{world.link.code}").status_code == 410
        assert count(db, tables.clicks) == stored


def test_head_answers_like_get_and_is_recorded_as_a_filtered_click(db, client, world):
    r = client.head(f"/c/{world.link.code}")
    assert r.status_code == 302
    assert r.headers["location"].startswith("https://shop.example.com/")
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers
    (row,) = click_rows(db)
    assert row.id == click_id_of(r)
    assert (row.invalid, row.fraud_score) == (True, 100)
    assert row.fraud_reasons.split(",")[0] == "head_or_prefetch"
    assert rollup_totals(db) == (0, 0, 0)  # not a click, nor a bot: filtered
    with db.read() as conn:
        filtered = conn.execute(select(func.sum(tables.click_rollups.c.invalid_clicks))).scalar()
    assert filtered == 1
    with db.write() as conn:
        conn.execute(tables.clicks.delete())
        conn.execute(tables.click_rollups.delete())
    assert client.head("/c/Zz9Zz9Zz9").status_code == 404
    bad = quote("https://evil.com/", safe="")
    assert client.head(f"/c/{world.link.code}?url={bad}").status_code == 400
    assert stored_nothing(db)
    patch_program(client, world, status="paused")
    assert client.head(f"/c/{world.link.code}").status_code == 410
    assert stored_nothing(db)


def test_sub_id_too_long_or_with_control_characters_is_refused_and_not_stored(db, client, world):
    for param, value in [
        ("sub1", "x" * 256),
        ("sub3", "x" * 256),
        ("sub5", "x" * 256),
        ("aff_click_id", "x" * 256),
        ("sub1", "%00abc"),  # PostgreSQL text cannot hold a NUL
        ("sub2", "line%0D%0ASet-Cookie:%20x=1"),
        ("aff_click_id", "a%00b"),
    ]:
        r = client.get(f"/c/{world.link.code}?{param}={value}")
        assert_small_html_page(r, 400)
        assert param in r.text
    assert stored_nothing(db)
    ok = client.get(
        f"/c/{world.link.code}?sub1={'x' * 255}&sub5={'y' * 255}&sub2=%E5%BE%AE%E4%BF%A1"
    )
    assert ok.status_code == 302
    (row,) = click_rows(db)
    assert (row.sub1, row.sub2, row.sub5) == ("x" * 255, "微信", "y" * 255)
