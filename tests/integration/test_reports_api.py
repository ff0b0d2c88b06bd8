"""Reports, GET /api/v1/reports (spec section 6): served from the hourly rollups."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from factories.http import assert_error, bearer
from factories.http import convert as convert_now
from factories.world import World, make_world
from tuike.domain import ids
from tuike.domain.catalog import Link
from tuike.domain.tracking import ClickRecord
from tuike.services.clicks import record_clicks
from tuike.storage import tables

URL = "/api/v1/reports"
METRICS = [
    "currency",
    "impressions",
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "invalid_clicks",
    "conversions",
    "conversion_rate",
    "amount",
    "commission",
    "epc",
]

# A day ten days ago; 17:30 UTC on it is already 01:30 the next day in Shanghai.
DAY = (datetime.now(UTC) - timedelta(days=10)).date()
NEXT = DAY + timedelta(days=1)
LATE = datetime.combine(DAY, time(17, 30), UTC)
NOON = datetime.combine(DAY, time(4, 0), UTC)  # 12:00 in Shanghai, same day


# --- helpers -------------------------------------------------------------------------


def clicks_at(
    db: Any,
    link: Link,
    at: datetime,
    n: int = 1,
    *,
    bots: int = 0,
    repeats: int = 0,
    sub1: str | None = None,
) -> list[str]:
    """Store n unique clicks (plus repeat and bot clicks) on a link at a time."""
    records = []
    kinds = [(True, False)] * n + [(False, False)] * repeats + [(False, True)] * bots
    for unique, bot in kinds:
        records.append(
            ClickRecord(
                id=ids.new_ulid(at),
                clicked_at=at,
                program_id=link.program_id,
                link_id=link.id,
                affiliate_id=link.affiliate_id,
                creative_id=None,
                subs=(sub1 if sub1 is not None else link.subs[0], "", "", "", ""),
                aff_click_id="",
                landing_url="https://shop.example.com/",
                ip=None,
                user_agent="bot" if bot else "",
                referer="",
                country="CN",
                device="bot" if bot else "mobile",
                visitor=f"{len(records):032d}",
                is_unique=unique,
                is_bot=bot,
                # As the tracker records a declared bot: filtered by the bot_ua rule.
                fraud_score=100 if bot else 0,
                fraud_reasons="bot_ua" if bot else "",
                invalid=bot,
            )
        )
    with db.write() as conn:
        record_clicks(conn, records)
    return [r.id for r in records]


def convert(client: Any, key: str, order_id: str, click_id: str | None, **fields: Any) -> Any:
    """Record a new conversion that happened at LATE (unless fields say otherwise)."""
    return convert_now(
        client, key, order_id, click_id, **{"occurred_at": LATE.isoformat(), **fields}
    )


def report(client: Any, key: str, **params: Any) -> Any:
    params.setdefault("from", (DAY - timedelta(days=1)).isoformat())
    params.setdefault("to", (NEXT + timedelta(days=1)).isoformat())
    r = client.get(URL, params=params, headers=bearer(key))
    assert r.status_code == 200, r.text
    return r


def rows(client: Any, key: str, **params: Any) -> list[dict[str, Any]]:
    return report(client, key, **params).json()["rows"]


@pytest.fixture
def world(db: Any) -> World:
    return make_world(db)


@pytest.fixture
def traffic(db: Any, client: Any, world: World) -> World:
    """Four clicks and a bot late on DAY, three conversions (one rejected) on link 1."""
    ids_ = clicks_at(db, world.link, LATE, 3, repeats=1, bots=1)
    convert(client, world.program_key, "R-1", ids_[0])  # 19.90
    convert(client, world.program_key, "R-2", ids_[1], amount="50.00")  # 5.00
    convert(client, world.program_key, "R-3", ids_[2], event="lead", amount="0.00")  # 5.00
    convert(client, world.program_key, "R-4", ids_[2], status="rejected")  # not counted
    return world


# --- time zones ----------------------------------------------------------------------


def test_days_and_hours_follow_the_requested_time_zone(db, client, world):
    clicks_at(db, world.link, LATE)
    clicks_at(db, world.link, NOON, 2)
    utc = rows(client, world.merchant_key, group_by="day", tz="UTC")
    assert [(r["day"], r["clicks"]) for r in utc] == [(DAY.isoformat(), 3)]
    sh = rows(client, world.merchant_key, group_by="day", tz="Asia/Shanghai")
    assert [(r["day"], r["clicks"]) for r in sh] == [(DAY.isoformat(), 2), (NEXT.isoformat(), 1)]
    hours = rows(client, world.merchant_key, group_by="hour", tz="UTC")
    assert [(r["hour"], r["clicks"]) for r in hours] == [
        (f"{DAY} 04:00", 2),
        (f"{DAY} 17:00", 1),
    ]
    hours = rows(client, world.merchant_key, group_by="hour", tz="Asia/Shanghai")
    assert [(r["hour"], r["clicks"]) for r in hours] == [
        (f"{DAY} 12:00", 2),
        (f"{NEXT} 01:00", 1),
    ]
    # "to" is an inclusive local day: the late click falls outside DAY in Shanghai.
    only = rows(client, world.merchant_key, tz="Asia/Shanghai", **{"from": DAY, "to": DAY})
    assert sum(r["clicks"] for r in only) == 2
    only = rows(client, world.merchant_key, tz="UTC", **{"from": DAY, "to": DAY})
    assert sum(r["clicks"] for r in only) == 3


def test_days_across_a_daylight_saving_change_match_the_hours(db, client, world):
    # New York springs forward on 2026-03-08 at 02:00 local (07:00 UTC): UTC-5 -> UTC-4.
    times = [
        "2026-03-07T04:30",
        "2026-03-08T04:30",
        "2026-03-08T04:59",
        "2026-03-09T03:30",
        "2026-03-09T04:30",
        "2026-03-10T03:30",
    ]
    for i, at in enumerate(times):
        clicks_at(db, world.link, datetime.fromisoformat(at).replace(tzinfo=UTC), i + 1)
    params = {"tz": "America/New_York", "from": "2026-03-06", "to": "2026-03-10"}
    days = rows(client, world.merchant_key, group_by="day", **params)
    hours = rows(client, world.merchant_key, group_by="hour", **params)
    by_day: dict[str, int] = {}
    for r in hours:
        by_day[r["hour"][:10]] = by_day.get(r["hour"][:10], 0) + r["clicks"]
    assert {r["day"]: r["clicks"] for r in days} == by_day
    # 04:30 UTC is 23:30 the day before under UTC-5, but 00:30 the same day under UTC-4.
    assert by_day == {"2026-03-06": 1, "2026-03-07": 5, "2026-03-08": 4, "2026-03-09": 11}


# --- grouping and metrics ------------------------------------------------------------


def test_group_by_program_affiliate_sub1_with_names(db, client, world):
    clicks_at(db, world.link, LATE, 2)
    clicks_at(db, world.link, LATE, 1, sub1="moments")
    clicks_at(db, world.other_link, LATE, 4)
    got = rows(client, world.operator_key, group_by="program,affiliate,sub1")
    keys = [
        (
            r["program"],
            r["program_name"],
            r["affiliate"],
            r["affiliate_name"],
            r["sub1"],
            r["clicks"],
        )
        for r in got
    ]
    assert sorted(keys) == sorted(
        [
            (world.program.id, "Shop CPS", world.affiliate_id, "Affiliate 1", "moments", 1),
            (world.program.id, "Shop CPS", world.affiliate_id, "Affiliate 1", "wechat", 2),
            (world.other_program.id, "Other CPS", world.other_affiliate_id, "Affiliate 2", "", 4),
        ]
    )


def test_metrics_are_computed_from_clicks_and_valid_conversions(client, traffic):
    (row,) = rows(client, traffic.merchant_key, group_by="program")
    assert row == {
        "program": traffic.program.id,
        "program_name": "Shop CPS",
        "currency": "CNY",
        "impressions": 0,
        "clicks": 4,
        "unique_clicks": 3,
        "bot_clicks": 1,
        "invalid_clicks": 1,  # the bot, filtered: not in clicks, EPC or conversion rate
        "conversions": 3,
        "conversion_rate": "0.7500",  # 3 / 4
        "amount": "249.00",  # 199.00 + 50.00 + 0.00, the rejected order left out
        "commission": "29.90",  # 19.90 + 5.00 + 5.00
        "epc": "7.4750",  # 29.90 / 4
        "cost": "29.90",
        "roi": "7.33",  # (249.00 - 29.90) / 29.90
    }
    by_status = rows(client, traffic.merchant_key, group_by="status")
    rejected = [r for r in by_status if r["status"] == "rejected"]
    assert [(r["conversions"], r["amount"], r["commission"]) for r in rejected] == [
        (1, "199.00", "0.00")
    ]


def test_affiliate_sees_the_metrics_without_cost_and_roi(client, traffic):
    (row,) = rows(client, traffic.affiliate_key, group_by="affiliate")
    assert row["affiliate"] == traffic.affiliate_id
    assert (row["clicks"], row["conversions"], row["commission"], row["epc"]) == (
        4,
        3,
        "29.90",
        "7.4750",
    )
    assert "cost" not in row and "roi" not in row
    assert rows(client, traffic.other_affiliate_key, group_by="affiliate") == []


def test_csv_report_has_a_header_and_the_same_values(client, traffic):
    r = report(client, traffic.merchant_key, group_by="day,program", tz="UTC", format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(r.text))
    assert reader.fieldnames == ["day", "program", "program_name", *METRICS, "cost", "roi"]
    (line,) = list(reader)
    assert line == {
        "day": DAY.isoformat(),
        "program": str(traffic.program.id),
        "program_name": "Shop CPS",
        "currency": "CNY",
        "impressions": "0",
        "clicks": "4",
        "unique_clicks": "3",
        "bot_clicks": "1",
        "invalid_clicks": "1",
        "conversions": "3",
        "conversion_rate": "0.7500",
        "amount": "249.00",
        "commission": "29.90",
        "epc": "7.4750",
        "cost": "29.90",
        "roi": "7.33",
    }
    r = report(client, traffic.affiliate_key, group_by="sub1", format="csv")
    header = next(csv.reader(io.StringIO(r.text)))
    assert header == ["sub1", *METRICS]


def test_rates_are_empty_without_clicks(client, world):
    coupon = {"program_id": world.program.id, "affiliate_id": world.affiliate_id, "code": "RATE"}
    assert client.post(
        "/api/v1/coupons", json=coupon, headers=bearer(world.merchant_key)
    ).is_success
    assert convert(client, world.program_key, "BY-COUPON", None, coupon="RATE")["attributed"]
    r = report(client, world.operator_key, group_by="program", format="csv")
    (line,) = list(csv.DictReader(io.StringIO(r.text)))
    assert (line["clicks"], line["conversion_rate"], line["epc"]) == ("0", "", "")


def test_conversions_carry_the_dimensions_of_their_click(client, traffic):
    got = rows(client, traffic.merchant_key, group_by="link,sub1,country,device")
    assert sorted(
        (
            r["link"],
            r["sub1"],
            r["country"],
            r["device"],
            r["clicks"],
            r["bot_clicks"],
            r["conversions"],
        )
        for r in got
    ) == [
        (traffic.link.id, "wechat", "CN", "bot", 0, 1, 0),
        (traffic.link.id, "wechat", "CN", "mobile", 4, 0, 3),
    ]


def test_unattributed_orders_do_not_count_as_affiliate_conversions(db, client, world):
    ids_ = clicks_at(db, world.link, LATE, 2)
    convert(client, world.program_key, "AFF", ids_[0])
    for n in range(3):
        convert(client, world.program_key, f"ORGANIC-{n}", None, amount="1000.00")
    (row,) = rows(client, world.merchant_key, group_by="program")
    assert (row["conversions"], row["amount"], row["conversion_rate"]) == (1, "199.00", "0.5000")


# --- rejected queries and the rollups ------------------------------------------------


def test_bad_report_parameters_are_400(client, world):
    key = world.merchant_key
    cases = [
        ({"group_by": "day,bogus"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"group_by": "amount"}, "group_by"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "30/11/2026"}, "to"),
        ({"from": NEXT.isoformat(), "to": DAY.isoformat()}, "from"),
        ({"from": (DAY - timedelta(days=500)).isoformat(), "to": DAY.isoformat()}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "to"),
        ({"to": "0001-01-01"}, "to"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": "+08:00"}, "tz"),
        ({"format": "xml"}, "format"),
    ]
    for params, field in cases:
        assert_error(client.get(URL, params=params, headers=bearer(key)), 400, field)
    r = client.get(URL)
    assert r.status_code == 401 and r.json()["error"]["message"]


def test_reports_are_served_from_the_rollups(db, client, traffic):
    before = rows(client, traffic.merchant_key, group_by="day,program")
    with db.write() as conn:
        conn.execute(delete(tables.clicks))
        conn.execute(delete(tables.conversion_events))
        conn.execute(delete(tables.ledger_entries))
        conn.execute(delete(tables.ledger_transactions))
        conn.execute(delete(tables.conversions))
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(tables.clicks)).scalar() == 0
    after = rows(client, traffic.merchant_key, group_by="day,program")
    assert after == before
    assert after[0]["clicks"] == 4 and after[0]["conversions"] == 3


def test_default_period_is_the_last_seven_days_in_the_default_time_zone(db, client, world):
    today = datetime.now(UTC)
    clicks_at(db, world.link, today - timedelta(hours=1))
    clicks_at(db, world.link, today - timedelta(days=9))
    body = client.get(URL, headers=bearer(world.merchant_key)).json()
    assert body["tz"] == "Asia/Shanghai"
    assert date.fromisoformat(body["to"]) - date.fromisoformat(body["from"]) == timedelta(days=6)
    assert body["group_by"] == ["day"]
    assert sum(r["clicks"] for r in body["rows"]) == 1
