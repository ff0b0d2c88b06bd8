"""Click-time traffic quality through the real tracker, conversion API and reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from factories.http import bearer, convert, row_of
from factories.world import World, make_world
from tuike.services.catalog import bump_version
from tuike.storage import tables
from tuike.web.app import create_app

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; {model} Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 "
    "MicroMessenger/8.0.{n}.2460(0x28002A3B) WeChat/arm64 NetType/4G Language/zh_CN"
)
MODELS = ["V2134A", "SM-S918B", "PGT-AN00", "M2012K11AC", "CPH2557", "NOH-AN00", "22081212C"]


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


def click_id_of(r: Any) -> str:
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["tk_click"][0]


def cookies_set(r: Any) -> list[str]:
    return [c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")]


def stored(db: Any, click_id: str) -> Any:
    with db.read() as conn:
        return conn.execute(select(tables.clicks).where(tables.clicks.c.id == click_id)).one()


def rollup(db: Any) -> dict[str, int]:
    r = tables.click_rollups.c
    names = ("clicks", "unique_clicks", "bot_clicks", "invalid_clicks")
    with db.read() as conn:
        row = conn.execute(
            select(*(func.coalesce(func.sum(getattr(r, n)), 0) for n in names))
        ).one()
    return dict(zip(names, (int(v) for v in row), strict=True))


def set_fraud_config(db: Any, program_id: int, config: dict[str, Any]) -> None:
    with db.write() as conn:
        conn.execute(
            update(tables.programs)
            .where(tables.programs.c.id == program_id)
            .values(fraud_config=config)
        )
        bump_version(conn)


@pytest.fixture
def tracker(db: Any, settings: Any) -> Iterator[Any]:
    """Open tracker clients at an address, with settings changes, sharing one app per call."""
    opened: list[TestClient] = []

    def open_(address: str = "203.0.113.77", **changes: Any) -> TestClient:
        app = create_app(settings.model_copy(update=changes), db)
        c = TestClient(app, follow_redirects=False, client=(address, 50000))
        opened.append(c.__enter__())
        return c

    yield open_
    for c in opened:
        c.__exit__(None, None, None)


# --- filtered clicks do not attribute ----------------------------------------------------


def test_head_and_bot_clicks_are_filtered_and_attribute_nothing(db, client, world):
    head = client.head(f"/c/{world.link.code}")
    head_id = click_id_of(head)
    assert cookies_set(head) == []

    bot = client.get(f"/c/{world.link.code}", headers={"user-agent": GOOGLEBOT})
    bot_id = click_id_of(bot)
    assert "tk_click" not in cookies_set(bot)  # a filtered click takes no one's place
    row = stored(db, bot_id)
    assert (row.invalid, row.is_bot, row.fraud_score) == (True, True, 100)
    assert row.fraud_reasons.split(",")[0] == "bot_ua"
    assert stored(db, head_id).fraud_reasons.split(",")[0] == "head_or_prefetch"

    for order, click_id in (("HEAD-1", head_id), ("BOT-1", bot_id)):
        body = convert(client, world.program_key, order, click_id)
        assert body["attributed"] is False and body["affiliate_id"] is None
        note = row_of(db, order).attribution_note
        assert f"click_id {click_id} filtered as invalid traffic (score 100: " in note, note
        assert row_of(db, order).click_id is None

    # The same link, clicked by a person, still attributes.
    person = client.get(f"/c/{world.link.code}", headers={"user-agent": DESKTOP})
    assert "tk_click" in cookies_set(person)
    assert convert(client, world.program_key, "OK-1", click_id_of(person))["attributed"]
    assert rollup(db) == {"clicks": 1, "unique_clicks": 1, "bot_clicks": 1, "invalid_clicks": 2}


def test_a_filtered_cookie_click_does_not_attribute_through_the_pixel(db, client, world):
    bot_id = click_id_of(client.get(f"/c/{world.link.code}", headers={"user-agent": GOOGLEBOT}))
    client.cookies.set("tk_click", bot_id)  # as if a cookie had been set anyway
    r = client.get(
        "/px.gif",
        params={"program": world.program.public_id, "order_id": "PX-1", "amount": "10.00"},
    )
    assert r.status_code == 200
    row = row_of(db, "PX-1")
    assert row.affiliate_id is None
    assert "cookie click filtered as invalid traffic" in row.attribution_note


def test_prefetch_requests_are_filtered(db, client, world):
    for header, value in (("sec-purpose", "prefetch"), ("x-purpose", "preview")):
        r = client.get(f"/c/{world.link.code}", headers={header: value, "user-agent": DESKTOP})
        row = stored(db, click_id_of(r))
        assert row.invalid and row.fraud_reasons.startswith("head_or_prefetch"), header


# --- reports -----------------------------------------------------------------------------


def test_reports_show_filtered_clicks_apart_and_epc_uses_valid_clicks(db, client, world):
    client.head(f"/c/{world.link.code}")
    client.get(f"/c/{world.link.code}", headers={"user-agent": GOOGLEBOT})
    client.cookies.clear()
    valid = click_id_of(client.get(f"/c/{world.link.code}", headers={"user-agent": DESKTOP}))
    convert(client, world.program_key, "EPC-1", valid)  # 10 % of 199.00 = 19.90
    r = client.get(
        "/api/v1/reports", params={"group_by": "program"}, headers=bearer(world.merchant_key)
    )
    (row,) = r.json()["rows"]
    assert (row["clicks"], row["invalid_clicks"], row["bot_clicks"]) == (1, 2, 1)
    assert row["unique_clicks"] == 1
    assert (row["commission"], row["epc"], row["conversion_rate"]) == ("19.90", "19.9000", "1.0000")
    csv = client.get(
        "/api/v1/reports",
        params={"group_by": "program", "format": "csv"},
        headers=bearer(world.merchant_key),
    ).text
    assert "invalid_clicks" in csv.splitlines()[0]


# --- per-program settings ------------------------------------------------------------


def test_target_countries_count_against_clicks_from_elsewhere(db, tracker, world):
    set_fraud_config(db, world.program.id, {"target_countries": ["CN", "HK"]})
    c = tracker(country_header="CF-IPCountry")
    home = stored(db, click_id_of(c.get(f"/c/{world.link.code}", headers={"cf-ipcountry": "cn"})))
    assert (home.country, home.invalid) == ("CN", False)
    # A traveller: the country alone (30) and no referer (5) do not filter the click …
    away = stored(db, click_id_of(c.get(f"/c/{world.link.code}", headers={"cf-ipcountry": "US"})))
    assert "outside_target_country" in away.fraud_reasons.split(",")
    assert (away.fraud_score, away.invalid) == (35, False)
    # … from a server abroad, it is filtered.
    server = tracker(country_header="CF-IPCountry", address="3.5.140.2")
    abroad = stored(
        db, click_id_of(server.get(f"/c/{world.link.code}", headers={"cf-ipcountry": "US"}))
    )
    assert abroad.invalid
    assert {"outside_target_country", "datacenter_ip"} <= set(abroad.fraud_reasons.split(","))
    unknown = stored(db, click_id_of(c.get(f"/c/{world.link.code}")))
    assert "outside_target_country" not in unknown.fraud_reasons  # no country: no judgement


def test_a_program_can_switch_a_rule_off(db, tracker, world):
    set_fraud_config(db, world.program.id, {"disabled": ["bot_ua", "referer_mismatch"]})
    c = tracker()
    row = stored(db, click_id_of(c.get(f"/c/{world.link.code}", headers={"user-agent": GOOGLEBOT})))
    assert (row.is_bot, row.invalid, row.fraud_score, row.fraud_reasons) == (True, False, 0, "")
    assert rollup(db) == {"clicks": 1, "unique_clicks": 1, "bot_clicks": 1, "invalid_clicks": 0}
    # Other programs keep filtering bots.
    other = stored(
        db, click_id_of(c.get(f"/c/{world.other_link.code}", headers={"user-agent": GOOGLEBOT}))
    )
    assert other.invalid


# --- carrier NAT, servers, referers --------------------------------------------------


def test_carrier_nat_traffic_through_the_tracker_is_not_filtered(db, tracker, world):
    # 80 people behind one mobile carrier address, each a new browser (no cookie yet).
    c = tracker(address="223.104.3.1")
    for i in range(80):
        c.cookies.clear()
        ua = ANDROID.format(model=MODELS[i % len(MODELS)], n=i)
        row = stored(db, click_id_of(c.get(f"/c/{world.link.code}", headers={"user-agent": ua})))
        assert not row.invalid, (i, row.fraud_score, row.fraud_reasons)
    assert rollup(db)["clicks"] == 80
    assert "ip_velocity" in row.fraud_reasons and row.fraud_score < 60


def test_a_server_hammering_a_link_is_filtered(db, tracker, world):
    c = tracker(address="3.5.140.2")  # AMAZON-02
    rows = []
    for _ in range(12):
        c.cookies.clear()
        r = c.get(f"/c/{world.link.code}", headers={"user-agent": DESKTOP})
        rows.append(stored(db, click_id_of(r)))
    assert rows[0].invalid  # a cloud address is known data-centre traffic: filtered at once
    assert rows[0].fraud_reasons.split(",")[0] == "datacenter_ip"
    assert rows[-1].invalid
    assert {"datacenter_ip", "repeat_visitor", "visitor_velocity"} <= set(
        rows[-1].fraud_reasons.split(",")
    )


def test_referers_are_compared_with_the_declared_channels(db, tracker, world):
    c = tracker()
    # The world's affiliate declared the blog https://blog1.example.
    own = c.get(f"/c/{world.link.code}", headers={"referer": "https://blog1.example/post/7"})
    assert stored(db, click_id_of(own)).fraud_reasons == ""
    spam = c.get(f"/c/{world.link.code}", headers={"referer": "https://spam.example.net/"})
    row = stored(db, click_id_of(spam))
    assert (row.fraud_reasons, row.invalid) == ("referer_mismatch", False)
